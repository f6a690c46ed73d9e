"""The obvious code the project must beat: pandas read_csv(dtype=str), a phonenumbers loop, drop_duplicates."""

from __future__ import annotations

import pandas as pd
import phonenumbers


def naive(path, region: str = "US") -> pd.DataFrame:
    """Return one row per input row with the E.164 number (None when rejected) and `keep`."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = []
    for phone, country in zip(frame["Phone"], frame["Country"]):
        try:
            number = phonenumbers.parse(phone, country or region)
            out.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if phonenumbers.is_valid_number(number) else None)
        except phonenumbers.NumberParseException:
            out.append(None)
    frame["e164"] = out
    frame["keep"] = frame["e164"].notna() & ~frame.duplicated("e164")
    return frame


if __name__ == "__main__":  # `python -m bench.naive FILE`: the naive loop as its own command, for bench/e2e.py
    import sys

    naive(sys.argv[1])
