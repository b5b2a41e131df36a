"""Downstream utility: train on real / synthetic, test on real."""
