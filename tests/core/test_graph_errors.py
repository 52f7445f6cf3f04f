"""Every Graph error code Meta documents for Reelay's calls maps to what Reelay does about it."""

from __future__ import annotations

import json

import pytest

from core.domain.graph_errors import (
    ErrorKind,
    GraphError,
    Usage,
    classify,
    parse_usage,
    slowdown_s,
    transport_error,
)

K = ErrorKind

# (code, subcode, kind, words the user-facing title must contain)
TABLE: list[tuple[int, int | None, ErrorKind, str]] = [
    (9007, 2207027, K.NOT_READY, "processed"),
    (24, 2207008, K.TRANSIENT, "temporary"),
    (-2, 2207003, K.NEW_CONTAINER, "timed out"),
    (-2, 2207020, K.NEW_CONTAINER, "expired"),
    (9004, 2207052, K.PERMANENT, "URL is not public"),
    (352, 2207026, K.PERMANENT, "video"),
    (36003, 2207009, K.PERMANENT, "aspect ratio"),
    (36000, 2207004, K.PERMANENT, "8 MB"),
    (36001, 2207005, K.PERMANENT, "JPEG"),
    (36004, 2207010, K.PERMANENT, "2200"),
    (100, 2207040, K.PERMANENT, "@mentions"),
    (9, 2207042, K.QUOTA, "daily publishing limit"),
    (4, 2207051, K.RESTRICTED, "spam"),
    (25, 2207050, K.RESTRICTED, "restricted"),
    (190, None, K.TOKEN_INVALID, "reconnect"),
    (190, 463, K.TOKEN_INVALID, "reconnect"),
    (190, 460, K.TOKEN_INVALID, "reconnect"),
    (4, None, K.RATE_LIMITED, "Too many requests"),
    (17, None, K.RATE_LIMITED, "Too many requests"),
    (32, None, K.RATE_LIMITED, "Too many requests"),
    (613, None, K.RATE_LIMITED, "Too many requests"),
    (80002, None, K.RATE_LIMITED, "Too many"),
    (10, 2534025, K.ALREADY_DONE, "private reply"),
    (100, 2534025, K.ALREADY_DONE, "private reply"),
    (10, 2534022, K.WINDOW_CLOSED, "window"),
    (1, None, K.TRANSIENT, "unknown problem"),
    (2, None, K.TRANSIENT, "temporarily unavailable"),
]


def envelope(code: int, subcode: int | None, message: str = "Meta says no") -> dict[str, object]:
    error: dict[str, object] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(("code", "subcode", "kind", "words"), TABLE)
def test_every_documented_code_is_classified(
    code: int, subcode: int | None, kind: ErrorKind, words: str
) -> None:
    error = classify(envelope(code, subcode), http_status=400)
    assert error.kind is kind
    assert words in error.title
    assert (error.code, error.subcode) == (code, subcode)
    assert error.message == "Meta says no"
    assert error.fbtrace_id == "AbCdEf"
    assert error.http_status == 400
    assert error.retryable == (kind in {K.TRANSIENT, K.RATE_LIMITED, K.NOT_READY})


def test_image_url_error_has_the_human_message() -> None:
    error = classify(envelope(9004, 2207052, "Only photo or video can be accepted"))
    assert str(error).startswith("Instagram could not download the media: the URL is not public")


def test_subcodes_arrive_as_strings_too() -> None:
    body = {"error": {"message": "x", "code": "9007", "error_subcode": "2207027"}}
    assert classify(body, http_status=400).kind is K.NOT_READY


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status: int) -> None:
    assert classify(None, http_status=status).kind is K.TRANSIENT
    assert classify({"error": {"message": "oops"}}, http_status=status).kind is K.TRANSIENT


def test_is_transient_flag_is_honoured_for_unknown_codes() -> None:
    body = {"error": {"message": "x", "code": 12345, "is_transient": True}}
    assert classify(body, http_status=400).kind is K.TRANSIENT


def test_http_429_without_code_is_rate_limited() -> None:
    assert classify("slow down", http_status=429).kind is K.RATE_LIMITED


def test_unknown_code_is_permanent_and_keeps_metas_words() -> None:
    body = {"error": {"message": "(#10) Permission denied", "code": 10}}
    error = classify(body, http_status=403)
    assert error.kind is K.PERMANENT
    assert "Permission denied" in error.title


def test_user_message_wins_for_unknown_codes() -> None:
    body = {"error": {"message": "x", "code": 12, "error_user_msg": "Try a smaller photo"}}
    assert classify(body, http_status=400).title == "Try a smaller photo"


def test_oauth_flat_shape() -> None:
    body = {"error_type": "OAuthException", "code": 400, "error_message": "Invalid code"}
    error = classify(body, http_status=400)
    assert error.kind is K.PERMANENT
    assert error.code is None
    assert error.message == "Invalid code"


def test_rate_limit_wait_comes_from_business_usage_header() -> None:
    headers = {
        "x-business-use-case-usage": json.dumps(
            {
                "1784": [
                    {
                        "type": "instagram",
                        "call_count": 100,
                        "total_cputime": 20,
                        "total_time": 30,
                        "estimated_time_to_regain_access": 7,
                    }
                ]
            }
        )
    }
    error = classify(envelope(80002, None), http_status=400, headers=headers)
    assert error.kind is K.RATE_LIMITED
    assert error.retry_after_s == 7 * 60


def test_rate_limit_without_headers_has_a_default_wait() -> None:
    error = classify(envelope(4, None), http_status=400)
    assert error.retry_after_s is not None and error.retry_after_s > 0


def test_parse_usage_reads_both_headers() -> None:
    usage = parse_usage(
        {
            "X-App-Usage": '{"call_count":28,"total_time":85,"total_cputime":25}',
            "X-Business-Use-Case-Usage": json.dumps(
                {"1": [{"call_count": 40, "estimated_time_to_regain_access": 0}]}
            ),
        }
    )
    assert usage == Usage(app_pct=85, business_pct=40, regain_after_s=None)
    assert usage.pct == 85
    assert parse_usage({"Content-Type": "application/json"}) is None
    assert parse_usage({"X-App-Usage": "not json"}) == Usage()


def test_slowdown_grows_before_full_usage() -> None:
    assert slowdown_s(None) == 0
    assert slowdown_s(Usage(app_pct=50)) == 0
    low, high = slowdown_s(Usage(app_pct=80)), slowdown_s(Usage(business_pct=95))
    assert 0 < low < high <= 5
    assert slowdown_s(Usage(app_pct=100, regain_after_s=120)) == 120


def test_transport_error_says_whether_a_write_may_have_happened() -> None:
    read = transport_error("timeout", sent=False)
    write = transport_error("timeout", sent=True)
    assert read.kind is write.kind is K.TRANSIENT
    assert "may or may not" in write.title
    assert isinstance(read, GraphError)
