"""JSON answers: compact UTF-8 from orjson, and what orjson refuses still answered."""

from __future__ import annotations

import json

from gateway.responses import json_response


def test_an_answer_is_json_with_its_status_and_type():
    response = json_response({"content": "héllo ✓", "n": 3}, status=201)
    assert response.status_code == 201 and response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"content": "héllo ✓", "n": 3}


def test_a_number_past_64_bits_falls_back_to_the_json_module():
    response = json_response({"usage": {"prompt_tokens": 2**70}})
    assert json.loads(response.content) == {"usage": {"prompt_tokens": 2**70}}
