"""Reports: training logs -> curves and tables."""
