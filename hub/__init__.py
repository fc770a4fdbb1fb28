"""synchub: keeps a company's CRM, ERP and OA products consistent."""

__version__ = "0.1.0"
