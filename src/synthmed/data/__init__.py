"""Data layer: readers by file ending, dataset descriptions, preprocessing, splits, phantoms."""
