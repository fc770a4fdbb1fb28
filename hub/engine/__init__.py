"""The sync engine: trigger -> pull -> map in -> identity -> merge -> plan -> push -> links.

It holds no vendor knowledge: connectors come from `connectors.registry` by name and are
driven only through `connectors.base`. See DESIGN.md, "The path of one record".
"""
