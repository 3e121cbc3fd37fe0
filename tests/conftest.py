from scaling import steps

steps.enable_compilation_cache()
