"""The tables, figures and files of a results folder."""
