"""Engine: the training recipe (trainer), evaluation, prediction on a finished run, and the accelerate runtime."""
