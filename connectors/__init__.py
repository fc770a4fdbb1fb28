"""Vendor connectors: one package per vendor, found by name through the `synchub.connectors`
entry-point group so that a third party can ship one as a pip package."""
