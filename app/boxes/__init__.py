"""Activated-carbon adsorption boxes, their fills, the four-colour code and its history."""
