"""What takes a fitted meta-analysis and returns a result: sensitivity, subgroups, bias, ..."""
