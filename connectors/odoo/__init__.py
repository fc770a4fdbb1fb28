"""Odoo ERP over its external JSON-RPC API (authenticate, then execute_kw).

This package is found through the `synchub.connectors` entry point `odoo`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "database",
            "login",
            "api_key"
        ],
        "properties": {
            "database": {
                "type": "string",
                "minLength": 1,
                "description": "Odoo database name."
            },
            "login": {
                "type": "string",
                "minLength": 1,
                "description": "User login."
            },
            "api_key": {
                "type": "string",
                "minLength": 1,
                "description": "API key (or password) of that user."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "secret": {
                "type": "string",
                "minLength": 1,
                "description": "Shared secret the automation webhook presents: put it in the webhook URL as "
                               "?token=<secret> (Odoo sends no custom headers), or have a proxy add it as the "
                               "X-Odoo-Webhook-Token header."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": 5000,
                "description": "Records per search_read page (default 500)."
            },
            "fields": {
                "type": "object",
                "description": "Fields to read per model, e.g. {res.partner: [name, ref, vat]}; all fields when a "
                               "model is not listed. write_date is always added (the cursor needs it).",
                "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
            },
            "ca_file": {
                "type": "string",
                "minLength": 1,
                "description": "CA bundle to trust for a server with a private certificate."
            }
        }
    }
}

from connectors.odoo.connector import Connector  # noqa: E402 - the schema above must not need the connector

__all__ = ["SETTINGS_SCHEMA", "Connector"]
