"""Kubernetes resource quantities ("500m", "8Gi", "1e3", 4) as exact decimals.

The grammar is k8s.io/apimachinery/pkg/api/resource/quantity.go's:

    <quantity>        ::= <signedNumber><suffix>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

Suffixes are case sensitive ("m" is milli, "M" mega), and a lone "E" is exa while "E3" is an exponent,
as upstream decides. The `kubernetes` client's `parse_quantity` does the same but is not a dependency of
this project. Values are `Decimal`, so "0.1" + "0.2" CPU is exactly "0.3" and nothing is rounded before
the comparison with a node's allocatable.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

BINARY_SI = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL_SI = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?\d+)$")

Quantity = str | int | float | Decimal


def parse_quantity(value: Quantity) -> Decimal:
    """The quantity's value in base units (cores, bytes, devices); ValueError when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a quantity")
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a quantity") from None
    if suffix in BINARY_SI:
        return base * BINARY_SI[suffix]
    if suffix in DECIMAL_SI:
        return base * DECIMAL_SI[suffix]
    exponent = _EXPONENT.match(suffix)
    if exponent is None:
        raise ValueError(f"{value!r}: unknown suffix {suffix!r}")
    return base.scaleb(int(exponent.group(1)))


def format_cpu(cores: Decimal) -> str:
    """Cores as a person reads them: whole cores plain, the rest in millicores ("81", "2.55" -> "2550m")."""
    if cores == cores.to_integral_value():
        return str(int(cores))
    return f"{(cores * 1000).quantize(Decimal(1))}m"


def format_bytes(size: Decimal) -> str:
    """Bytes in the largest binary unit that keeps the figure at least 1, to two decimals at most."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        unit = BINARY_SI[suffix]
        if abs(size) >= unit:
            figure = (size / unit).quantize(Decimal("0.01")).normalize()
            return f"{figure:f}{suffix}"
    return f"{size.normalize():f}"
