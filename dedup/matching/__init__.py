"""Pure matching maths: alignment, scoring and grouping. No Django imports here."""
