"""Client commands and service events are declared once, in parlour/common/contracts, and derived elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
import pytest

from parlour.common.contracts import commands, events
from parlour.gateway.adapters.codec import KNOWN_TYPES, decode_text
from parlour.gateway.domain.protocol import Destination, Forward, ResumeRequest

PACKAGE = Path(__file__).resolve().parents[2] / "parlour"
CONTRACT = PACKAGE / "common" / "contracts"
# Types that exist only as client commands. (`typing`, `read`, `ping` and `pong` also name server frames,
# which messaging and the gateway declare as their own output.)
COMMAND_ONLY = set(commands.COMMAND_TYPES) - {"typing", "read", "ping", "pong"}


def _string_constants(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if CONTRACT not in p.parents), ids=str)
def test_no_module_outside_the_contract_spells_a_command_type(path: Path) -> None:
    spelled = _string_constants(path) & COMMAND_ONLY
    assert not spelled, f"{path.relative_to(PACKAGE)} declares {sorted(spelled)}: derive it from the contract"


def test_no_struct_outside_the_contract_is_tagged_with_a_command_only_type() -> None:
    for path in PACKAGE.rglob("*.py"):
        if CONTRACT in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                tags = {k.value.value for k in node.keywords if k.arg == "tag" and isinstance(k.value, ast.Constant)}
                assert not tags & COMMAND_ONLY, f"{path}: {node.name} redeclares a command"


def test_the_gateway_knows_exactly_the_contracts_commands() -> None:
    assert set(commands.COMMAND_TYPES) == KNOWN_TYPES
    assert {commands.command_type(frame) for frame in commands.CLIENT_FRAMES} == KNOWN_TYPES


@pytest.mark.parametrize("frame", commands.FORWARDED, ids=commands.command_type)
def test_every_forwarded_command_decodes_to_a_forward_on_its_route(frame: type[commands.ClientFrame]) -> None:
    fields = {"chat_id": "c1", "client_id": "k1", "body": "b", "message_id": "m1", "seq": 1, "chats": {"c1": 1}}
    fields |= {"emoji": "👍", "remove": False, "reply_to": "m0"}
    wanted = {name: fields[name] for name in frame.__struct_fields__}
    text = msgspec.json.encode(frame(**wanted)).decode()
    inbound = decode_text(text, 64 * 1024)
    assert isinstance(inbound, Forward | ResumeRequest)
    assert inbound.type == commands.command_type(frame)
    if isinstance(inbound, Forward):
        assert inbound.partition_key == (None if frame.route is commands.Route.USER else "c1")


@pytest.mark.parametrize("frame", commands.TO_PRESENCE, ids=commands.command_type)
def test_every_presence_command_decodes_to_a_forward_to_presence_keyed_by_its_sender(
    frame: type[commands.ClientFrame],
) -> None:
    text = msgspec.json.encode(frame(state="active")).decode()
    inbound = decode_text(text, 64 * 1024)
    assert isinstance(inbound, Forward)
    assert (inbound.type, inbound.partition_key) == (commands.command_type(frame), None)
    assert inbound.destination is Destination.PRESENCE


def test_every_command_goes_to_exactly_one_place() -> None:
    gateway = {frame for frame in commands.CLIENT_FRAMES if frame.route is commands.Route.GATEWAY}
    places = [set(commands.FORWARDED), set(commands.TO_PRESENCE), gateway]
    assert sum(len(place) for place in places) == len(commands.CLIENT_FRAMES)
    assert set().union(*places) == set(commands.CLIENT_FRAMES)


def test_every_service_event_has_its_own_routing_key() -> None:
    keys = [events.service_key(kind) for kind in events.SERVICE_EVENTS]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith("messaging.") for key in keys)
