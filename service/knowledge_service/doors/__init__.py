"""The front doors: they translate and delegate. One access table (access.py) serves them all."""
