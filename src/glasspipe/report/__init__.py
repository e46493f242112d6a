"""The results report: figures, tables and the README of the results directory."""
