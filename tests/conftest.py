"""Test-suite set-up: one torch thread per test process (the suite runs two processes on two cores;
more threads than cores makes every training step many times slower on a shared machine)."""
import torch

torch.set_num_threads(1)
