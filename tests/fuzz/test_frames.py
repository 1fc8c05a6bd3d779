"""Malformed frames after hello: random bytes, broken and non-object JSON, request envelopes
with wrong types, escaped lone surrogates, huge and deep values, binary frames."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from tests.fuzz import strategies as fs
from tests.fuzz.harness import EXAMPLES
from tests.fuzz.test_methods import discard, fuzz_settings, shared

_ENVELOPE = st.fixed_dictionaries({}, optional={
    "type": st.one_of(st.just("req"), fs.CONFUSED), "id": st.one_of(st.text(max_size=8),
                                                                      fs.CONFUSED),
    "method": st.one_of(st.sampled_from(["health", "sessions.list", "cron.add", "agent"]),
                        fs.CONFUSED),
    "params": fs.CONFUSED, "traceparent": fs.CONFUSED, "expectedProfileId": fs.CONFUSED,
    "extra": fs.CONFUSED})
FRAMES = st.one_of(
    st.binary(max_size=200),
    _ENVELOPE.map(lambda v: fs.encode(v).encode()),
    fs.CONFUSED.map(lambda v: fs.encode(v).encode()),
    _ENVELOPE.map(lambda v: fs.encode(v).encode()).flatmap(
        lambda b: st.integers(0, max(len(b) - 1, 0)).map(lambda n: b[:n])),  # truncated
    st.sampled_from([b'{"type":"req","id":"\\udfff","method":"health"}',
                     b'{"type":"req","id":"x","method":"\\ud800"}',
                     b'{"type":"req","id":"x","method":"health","params":1e999}',
                     b'{"type":"req","id":"x","method":"health","params":NaN}',
                     b'{"type":"req","id":"' + b"i" * 100_000 + b'","method":"health"}',
                     b'{"type":"req","id":"x","method":"' + b"m" * 100_000 + b'"}',
                     b"[" * 2000 + b"]" * 2000, b'{"a":' * 1100 + b"1" + b"}" * 1100,
                     b"\xff\xfe", b"", b" ", b"null", b'"req"']),
)


class FrameFuzz(unittest.TestCase):
    @fuzz_settings(EXAMPLES * 10)
    @given(payload=FRAMES, binary=st.booleans())
    def _fuzz(self, payload: bytes, binary: bool) -> None:
        shared().check_frame(payload, binary)

    def test_malformed_frames_after_hello(self) -> None:
        failed = True
        try:
            self._fuzz()
            failed = False
        except BaseExceptionGroup as group:  # hypothesis's FlakyFailure: show what failed
            raise group.exceptions[0] from None
        finally:
            self.flushLoggedErrors()
            shared().write_report("frames", failed)
            if failed:
                discard()

