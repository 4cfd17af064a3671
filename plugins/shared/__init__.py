"""Library code the built-in task plugins share: the Online Retail loader (``retail``, public as ``shopmtl.retail``) and ranking metrics."""
