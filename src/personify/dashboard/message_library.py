"""The message templates the Messaging page lists and previews.

Until a persisted template store is wired on ``app.state.message_templates`` (any mutable
mapping name -> :class:`MessageTemplate`), the dashboard keeps an in-memory library seeded with
the examples in ``message_examples/``; edits made there last until the process restarts.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from importlib import resources

import yaml

from personify.domain.errors import InvalidInput
from personify.messaging.templates import MessageTemplate


def example_templates() -> dict[str, MessageTemplate]:
    """The bundled example templates by name."""
    folder = resources.files("personify.dashboard").joinpath("message_examples")
    out: dict[str, MessageTemplate] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            template = MessageTemplate.parse(yaml.safe_load(entry.read_text(encoding="utf-8")))
            out[template.name] = template
    return out


def parse_template_yaml(text: str) -> MessageTemplate:
    """A template from the editor's YAML; InvalidInput names the offending path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"the template is not valid YAML: {exc}", field="template", accepted="a YAML mapping"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInput("the template must be a YAML mapping", field="template",
                           accepted="a mapping with name, channel and variants")
    return MessageTemplate.parse(data)


class _EditorDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, long lines never folded: what people edit."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_EditorDumper.add_representer(str, _str_block)


def template_yaml(template: MessageTemplate) -> str:
    """The template as editable YAML (block style, Unicode kept)."""
    data = template.model_dump(mode="json")
    return yaml.dump(data, Dumper=_EditorDumper, allow_unicode=True, sort_keys=False,
                     width=10_000)


TemplateLibrary = MutableMapping[str, MessageTemplate]
