"""distsim: a discrete-event simulator of distributed deep-learning training.

The data flow is workload graph ("what") + plan ("how") + device and topology
("where") -> simulator -> result.  Nothing here does I/O at import time.
"""

__version__ = "0.1.0"
