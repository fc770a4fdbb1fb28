"""Feishu (Lark) approvals with encrypted event subscriptions (schema 2.0).

This package is found through the `synchub.connectors` entry point `feishu`. It declares the
settings a system using it takes, so that `synchub check` validates them; the client,
connector, webhook and sandbox modules live beside this file.
"""

from typing import Any

from connectors.feishu.connector import Connector

__all__ = ["SETTINGS_SCHEMA", "Connector"]

_WIDGET: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "description": "Widget id (or custom_id) in the approval form."},
        "type": {"type": "string", "minLength": 1, "default": "input",
                 "description": "Widget type: input, textarea, number, amount, date, dateInterval, radio..."},
        "key": {"type": "string", "minLength": 1,
                "description": "A part of the widget: 'start'/'end'/'interval' of a dateInterval value, "
                               "'currency' of an amount widget."},
    },
}

SETTINGS_SCHEMA: dict[str, Any] = {
    "auth": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "app_id",
            "app_secret"
        ],
        "properties": {
            "app_id": {
                "type": "string",
                "minLength": 1,
                "description": "App ID."
            },
            "app_secret": {
                "type": "string",
                "minLength": 1,
                "description": "App Secret."
            }
        }
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "encrypt_key"
        ],
        "properties": {
            "encrypt_key": {
                "type": "string",
                "minLength": 1,
                "description": "Event encrypt key."
            },
            "verification_token": {
                "type": "string",
                "minLength": 1,
                "description": "Event verification token."
            },
            "max_age_seconds": {
                "type": "number",
                "minimum": 0,
                "description": "Refuse callbacks whose X-Lark-Request-Timestamp is further than this from now "
                               "(default 300; 0 turns the check off)."
            }
        }
    },
    "options": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "approval_codes": {
                "type": "object",
                "additionalProperties": {
                    "type": "string"
                },
                "description": "Approval kind -> approval definition code."
            },
            "forms": {
                "type": "object",
                "additionalProperties": {"type": "object", "additionalProperties": _WIDGET},
                "description": "Approval kind -> form key (as the mapping's form_values name it) -> widget."
            },
            "default_applicant": {
                "type": "string",
                "minLength": 1,
                "description": "open_id that submits instances whose payload names no applicant."
            },
            "page_size": {"type": "integer", "minimum": 1, "maximum": 100,
                          "description": "Instance codes per list call, and records per pulled page (default 100)."},
            "lookback_days": {"type": "number", "minimum": 0,
                              "description": "An incremental pull lists instances started this long before the "
                                             "cursor (default 30)."},
            "history_days": {"type": "number", "minimum": 0,
                             "description": "A full pull lists instances started in the last N days (default 365)."},
            "uuid_search_days": {"type": "number", "minimum": 0,
                                 "description": "How far back a repeated create looks for its instance (default 30)."},
            "fetch_concurrency": {"type": "integer", "minimum": 1, "maximum": 16,
                                  "description": "Instance details fetched at once (Feishu has no batch get; default 1)."},
            "ca_file": {"type": "string", "minLength": 1,
                        "description": "CA bundle to trust (a sandbox served over TLS)."}
        }
    }
}
