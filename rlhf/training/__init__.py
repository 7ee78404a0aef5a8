"""Training code: plain Python, never imports Django. Each stage is one dataclass config + one function + main()."""
