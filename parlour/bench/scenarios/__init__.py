"""The scenarios of `parlour bench`: send, fanout, connections, storm."""
