"""``bmshost.advertising``: UUID normalisation and advertisement matchers as drivers declare them."""

from __future__ import annotations

import pytest

from bmshost.advertising import Advertisement, BleMatcher, normalize_uuid, to_matchers

FF00 = "0000ff00-0000-1000-8000-00805f9b34fb"


@pytest.mark.parametrize("text", ["ff00", "0xFF00", "0000ff00", FF00.upper(), FF00.replace("-", "")])
def test_uuid_forms_normalise_to_the_128_bit_form(text: str) -> None:
    assert normalize_uuid(text) == FF00


@pytest.mark.parametrize("text", ["", "ff0", "zz00", "0000ff00-0000-1000-8000", "ff00ff00ff"])
def test_non_uuids_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Bluetooth UUID"):
        normalize_uuid(text)


def test_every_given_field_must_match() -> None:
    m = BleMatcher(service_uuid="ff00", oui="a4-c1-38")
    assert m.matches(Advertisement(address="a4:c1:38:00:00:01", service_uuids=("ff00",)))
    assert not m.matches(Advertisement(address="A4:C1:37:00:00:01", service_uuids=("ff00",)))
    assert not m.matches(Advertisement(address="A4:C1:38:00:00:01"))


def test_manufacturer_data_prefix() -> None:
    m = BleMatcher(manufacturer_id=0x0B65, manufacturer_data_prefix=b"\x01\x02")
    assert m.matches(Advertisement(address="x", manufacturer_data={0x0B65: b"\x01\x02\x03"}))
    assert not m.matches(Advertisement(address="x", manufacturer_data={0x0B65: b"\x02"}))
    assert not m.matches(Advertisement(address="x", manufacturer_data={0x4B4A: b"\x01\x02"}))
    with pytest.raises(ValueError, match="needs manufacturer_id"):
        BleMatcher(manufacturer_data_prefix=b"\x01")


def test_a_malformed_advertised_uuid_claims_nothing_and_breaks_nothing() -> None:
    m = BleMatcher(service_uuid="ff00")
    assert m.matches(Advertisement(address="x", service_uuids=("garbage", "ff00")))
    assert not m.matches(Advertisement(address="x", service_uuids=("garbage",)))


@pytest.mark.parametrize(
    "bad", [{}, {"colour": "red"}, {"oui": "A4C138"}, {"oui": "A4:C1:XZ"}, {"service_uuid": "no"}, 42]
)
def test_bad_declarations_are_value_errors(bad: object) -> None:
    with pytest.raises(ValueError):
        to_matchers([bad])  # type: ignore[list-item]


def test_dicts_and_matchers_are_both_accepted() -> None:
    assert to_matchers([{"local_name": "X"}, BleMatcher(local_name="Y")]) == (
        BleMatcher(local_name="X"),
        BleMatcher(local_name="Y"),
    )
