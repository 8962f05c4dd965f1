"""Simulators of the outside services, shipped so the relay runs and is tested offline."""
