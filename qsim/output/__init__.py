"""The results folder (its one writer and reader), plots, reports and message diagrams."""
