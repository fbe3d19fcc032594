"""Cross-cutting pieces every stage uses: typed configs, the device choice, run directories."""
