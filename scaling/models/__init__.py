"""The two model families (transformer.py, dit.py) and the one table of how they start (initialization.py)."""
