"""Benchmarks: ``make bench`` runs them all and writes ``bench/results/latest.{md,json}``."""
