"""The figures: `figures.write_figures` lists them, `style` gives their look, one module per family."""
