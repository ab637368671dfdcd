"""What makes two posts "the same message": a digest of its normalised content, stored with each classification.

A repeated message id gets the stored result only when this digest matches (a retry); the same id with other
content is a conflict, so an id cannot be claimed in advance nor used to read another message's result. Arrival
time is not part of it: a gateway's retry may carry a new receipt stamp, and the API stamps "now" when none is
sent. Stored digests are compared with new ones, so the normalisation below must never change.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata

from classifier.ingest import Message

HASH_LENGTH = 64  # sha256, hexadecimal


def _text(value: str | None) -> str:
    """Unicode NFC, one kind of line break, no surrounding blanks; missing is empty."""
    if not value:
        return ""
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


def content_hash(*, channel: str, subject: str | None, body: str | None, sender: str | None,
                 customer_id: str | None, product: str | None) -> str:
    """sha256 over the normalised fields (sender case-folded: addresses are compared without case)."""
    fields = [channel, _text(subject), _text(body), _text(sender).lower(), _text(customer_id), _text(product)]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


def message_hash(message: Message) -> str:
    """``content_hash`` of a message as the classifier received it."""
    return content_hash(channel=message.channel, subject=message.subject, body=message.body, sender=message.sender,
                        customer_id=message.customer_id, product=message.product)
