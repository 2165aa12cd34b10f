"""Experiments that check the method's claims on data other than radar."""
