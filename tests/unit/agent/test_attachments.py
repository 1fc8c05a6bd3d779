"""chat.send attachments: shape, base64, size limits; metadata recorded, bytes not; images to a
model that takes them."""

from __future__ import annotations

import base64

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent import attachments
from tests.support.helpers import hello, make_app

RW = ["operator.read", "operator.write"]


class Attachments(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.gw, scopes=RW)
        self.other = hello(self.gw, scopes=RW)

    def send(self, files: object, key: str = "k1", message: str = "look") -> dict:
        rid = self.c.request("chat.send", {"sessionKey": "main", "message": message,
                                           "idempotencyKey": key, "attachments": files})
        res = self.c.response(rid)
        assert res is not None
        return res

    def assert_bystander_works(self) -> None:
        res = self.other.response(self.other.request("chat.send", {
            "sessionKey": "other", "message": "hi", "idempotencyKey": "b1"}))
        self.assertTrue(res["ok"], res)

    def test_valid_attachment_is_recorded_without_its_bytes(self) -> None:
        data = base64.b64encode(b"hello file").decode()
        res = self.send([{"type": "file", "mimeType": "text/plain", "fileName": "a.txt",
                          "content": data}])
        self.assertTrue(res["ok"], res)
        self.clock.advance(1)
        hist = self.c.response(self.c.request("chat.history", {"sessionKey": "main"}))
        user = hist["payload"]["messages"][0]
        self.assertEqual(user["attachments"], [{"type": "file", "mimeType": "text/plain",
                                                "fileName": "a.txt", "sizeBytes": 10}])
        self.assertNotIn(data, str(hist))

    def test_not_an_array_or_object_gets_a_schema_error(self) -> None:
        res = self.send("nope")
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        self.assertEqual(res["error"]["message"],
                         "invalid chat.send params: at /attachments: must be array")
        res = self.send([42], key="k2")
        self.assertEqual(res["error"]["message"],
                         "invalid chat.send params: at /attachments/0: must be object")
        self.assert_bystander_works()

    def test_bad_base64_is_refused(self) -> None:
        res = self.send([{"mimeType": "text/plain", "content": "***not base64***"}])
        self.assertFalse(res["ok"])
        self.assertIn("not valid base64", res["error"]["message"])
        self.assert_bystander_works()

    def test_image_over_the_image_limit_is_refused_with_the_limit(self) -> None:
        big = base64.b64encode(b"\0" * (attachments.MAX_IMAGE_BYTES + 1)).decode()
        res = self.send([{"type": "image", "mimeType": "image/png", "content": big}])
        self.assertFalse(res["ok"])
        self.assertEqual(res["error"]["details"]["code"], "ATTACHMENT_TOO_LARGE")
        self.assertEqual(res["error"]["details"]["limit"], attachments.MAX_IMAGE_BYTES)
        # nothing was recorded for the refused turn
        hist = self.c.response(self.c.request("chat.history", {"sessionKey": "main"}))
        self.assertEqual(hist["payload"]["messages"], [])
        self.assert_bystander_works()

    def test_attachment_only_turn_is_allowed(self) -> None:
        data = base64.b64encode(b"x").decode()
        res = self.send([{"mimeType": "text/plain", "content": data}], message="")
        self.assertTrue(res["ok"], res)


class ImagesReachAModelThatTakesThem(SynchronousTestCase):
    """An image attached in the composer (the real UI sends {type: image, mimeType, content})
    goes to the turn's model as an image part when the model's ``input`` lists image."""

    PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()

    def start(self, inputs: list[str]) -> list[object]:
        from openclaw_tw.agent.models import ModelInfo, ModelResult

        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        registry = self.app.runtime.registry
        seen: list[object] = []

        class Vision:
            id, api = "vis", "openai-completions"

            def stream(self, request, on_text, on_tool):  # type: ignore[no-untyped-def]
                from twisted.internet.defer import succeed

                seen.append(request)
                on_text("I see it")
                return succeed(ModelResult("I see it"))

        registry.providers["vis"] = Vision()
        registry.models = [*registry.models, ModelInfo("vis", "v1", "v1", 8000,
                                                       input=tuple(inputs))]
        registry.primary = "vis/v1"
        c = hello(self.app.hub, scopes=RW)
        c.request("chat.send", {"sessionKey": "main", "message": "what is this?",
                                "idempotencyKey": "i1", "attachments": [
                                    {"type": "image", "mimeType": "image/png",
                                     "fileName": "a.png", "content": self.PNG}]})
        self.clock.advance(1)
        return seen

    def test_a_vision_model_gets_the_image(self) -> None:
        [request] = self.start(["text", "image"])
        self.assertEqual(request.messages[-1]["content"], [  # type: ignore[attr-defined]
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{self.PNG}"}}])
        run = next(iter(self.app.runtime.runs.values()))
        self.assertIsNone(run.images)  # not kept once sent

    def test_a_text_model_gets_the_text(self) -> None:
        [request] = self.start(["text"])
        self.assertEqual(request.messages[-1]["content"], "what is this?")  # type: ignore
