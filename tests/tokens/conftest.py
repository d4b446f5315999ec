"""Token tests share the gate refusal tests' real local gate harness."""

from tests.gate.conftest import harness  # noqa: F401 - re-exported fixture
