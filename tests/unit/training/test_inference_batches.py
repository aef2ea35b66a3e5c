"""training/inference.py inside a TorchServe batch, run the way the SageMaker PyTorch toolkit runs one
(aws-failure-behaviours.md §10, reproduced by the local container's ``Handler.invoke_batch``): input_fn / predict_fn /
output_fn once per request, every request given the FIRST request's Content-Type and Accept, and any exception
aborting the whole batch. Several requests per batch, mixed content types, and one bad image failing only itself.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from local_aws.sagemaker.container.handler import Context, Handler


def encode(fmt: str, size: tuple[int, int] = (48, 40), colour: tuple[int, int, int] = (200, 80, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def handler(random_artifact: Path) -> Handler:
    return Handler(str(random_artifact), batch_size=8)


def single(handler: Handler, body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
    status, payload, _, _ = handler.invoke(body, {"Content-Type": content_type})
    return status, json.loads(payload)


def test_a_batch_of_several_requests_answers_each_as_if_alone(handler: Handler) -> None:
    bodies = [encode("JPEG", colour=(i * 60, 90, 200 - i * 50)) for i in range(4)]
    replies = handler.invoke_batch([(b, {"Content-Type": "image/jpeg"}) for b in bodies])
    assert [r[0] for r in replies] == [200] * 4
    for body, (_, payload, content_type, _) in zip(bodies, replies, strict=True):
        assert content_type == "application/json"
        assert json.loads(payload) == single(handler, body, "image/jpeg")[1]


def test_mixed_content_types_in_one_batch_are_each_decoded_by_their_own_bytes(handler: Handler) -> None:
    jpeg, png = encode("JPEG"), encode("PNG", colour=(10, 200, 10))
    as_json = json.dumps({"image": base64.b64encode(png).decode(), "top_k": 2}).encode()
    batch = [
        (jpeg, {"Content-Type": "image/jpeg"}),  # the toolkit gives all four this Content-Type
        (png, {"Content-Type": "image/png"}),
        (as_json, {"Content-Type": "application/json"}),
        (png, {"Content-Type": "application/x-image"}),
    ]
    replies = handler.invoke_batch(batch)
    assert [r[0] for r in replies] == [200, 200, 200, 200], [r[1] for r in replies]
    answers = [json.loads(r[1]) for r in replies]
    assert answers[0] == single(handler, jpeg, "image/jpeg")[1]
    assert answers[1] == answers[3] == single(handler, png, "image/png")[1]
    assert answers[2] == single(handler, as_json, "application/json")[1]
    assert len(answers[2]["predictions"][0]) == 2  # the JSON request's own top_k


@pytest.mark.parametrize(
    ("bad", "status", "words"),
    [
        (encode("GIF"), 415, "unsupported image format GIF"),
        (b"\xff\xd8\xff\xe0 truncated", 400, "truncated or corrupt"),
        (b"", 400, "empty image"),
        (b'{"images": []}', 400, "non-empty list"),
    ],
)
def test_one_bad_request_fails_only_itself(handler: Handler, bad: bytes, status: int, words: str) -> None:
    good = encode("JPEG")
    replies = handler.invoke_batch(
        [(good, {"Content-Type": "image/jpeg"}), (bad, {"Content-Type": "image/jpeg"}), (good, {})]
    )
    assert [r[0] for r in replies] == [200, status, 200]
    assert words in json.loads(replies[1][1])["message"]
    assert replies[1][2] == "application/json"
    assert json.loads(replies[0][1]) == json.loads(replies[2][1]) == single(handler, good, "image/jpeg")[1]


def test_request_indexes_restart_with_every_batch(handler: Handler) -> None:
    """The bad request's position is found afresh in each batch: the second batch's bad one is at index 0."""
    good, gif = encode("JPEG"), encode("GIF")
    first = handler.invoke_batch([(good, {"Content-Type": "image/jpeg"}), (gif, {"Content-Type": "image/jpeg"})])
    second = handler.invoke_batch([(gif, {"Content-Type": "image/jpeg"}), (good, {"Content-Type": "image/jpeg"})])
    assert [r[0] for r in first] == [200, 415]
    assert [r[0] for r in second] == [415, 200]


def test_outside_a_batch_a_bad_image_still_raises_for_the_toolkit(loaded_model: dict[str, object]) -> None:
    import inference

    with pytest.raises(inference.InferenceClientError) as info:
        inference.input_fn(encode("GIF"), "image/jpeg", Context("/opt/ml/model", {"Content-Type": "image/jpeg"}))
    assert info.value.status_code == 415
    single_request = Handler.__new__(Handler)  # the status a lone request gets comes from the raised error
    assert single_request._error(info.value)[0] == 415


def test_the_first_requests_media_type_parameters_apply_to_the_whole_batch(handler: Handler) -> None:
    """As on SageMaker: the toolkit hands every request the first one's Content-Type, top_k parameter included."""
    replies = handler.invoke_batch(
        [(encode("JPEG"), {"Content-Type": "image/jpeg; top_k=2"}), (encode("PNG"), {"Content-Type": "image/png"})]
    )
    assert [r[0] for r in replies] == [200, 200]
    assert [len(json.loads(r[1])["predictions"][0]) for r in replies] == [2, 2]
