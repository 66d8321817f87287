"""Pure rules of the broker: access levels, policies, names, validation. Standard library only."""
