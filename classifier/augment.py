"""Altered copies of training messages, so that how a message is written cannot carry its label.

Every label gets the same alterations: spoken run-ons (lower case, no punctuation, spoken openings and fillers),
fast chat (no accents, abbreviations, typos), capitals, and a tidy e-mail frame (greeting and sign-off). The
courtesy formulas come from ``rules/estilo.yaml``, the file the model input strips them with.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

from classifier.model_input import CourtesyFile

STYLES = ("hablado", "chat", "mayusculas", "formal", "correo_largo")
_FILLERS = ("pues", "o sea", "eh", "bueno", "este", "digamos", "vale", "mire")
_ABBREVIATIONS = {"que": "q", "porque": "xq", "por": "x", "favor": "fa", "también": "tb", "tambien": "tb",
                  "para": "pa", "usted": "ud", "ustedes": "uds", "qué": "q", "de": "d", "estoy": "toy",
                  "por favor": "xfa", "mensaje": "msj", "gracias": "grax"}
_WORD = re.compile(r"\w+", re.UNICODE)
# What a long e-mail carries besides the sender's new text: a signature, a legal notice, the quoted thread.
_SIGNATURES = ("{name}\nCoordinación académica\nColegio San Rafael\nTel. 604 444 1020",
               "{name}\nAuxiliar contable | Distribuciones El Sol S.A.S.\nCel. 310 555 0101",
               "{name}\nJefe de Sistemas\nPBX 601 743 2200 ext. 114",
               "Atentamente,\n{name}\nC.C. 52.341.876")
_NAMES = ("Luz Marina Gómez", "Carlos Andrés Pérez", "Diana Rodríguez", "Jorge Iván Restrepo", "Paola Castaño")
_NOTICE = ("Este mensaje y sus anexos son confidenciales y están dirigidos exclusivamente a su destinatario. "
           "Los datos personales se tratan conforme a la Ley 1581 de 2012. Antes de imprimir, piense en el medio ambiente.")


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).replace("\u0303", "")


@dataclass(frozen=True)
class Restyler:
    """Rewrites a message's surface in one of ``STYLES``; the content words stay."""

    openings: tuple[str, ...]
    closings: tuple[str, ...]

    @classmethod
    def from_courtesy(cls, spec: CourtesyFile) -> "Restyler":
        return cls(tuple(spec.aperturas) or ("hola",), tuple(spec.cierres) or ("gracias",))

    def __call__(self, subject: str, body: str, style: str, rng: random.Random, quoted: str = "") -> tuple[str, str]:
        """``quoted``: another message's text, quoted under a long e-mail as an earlier thread."""
        text = f"{subject}. {body}" if subject else body
        if style == "hablado":
            words = _WORD.findall(text.lower())
            for _ in range(rng.randint(0, 2)):
                words.insert(rng.randint(0, len(words)), rng.choice(_FILLERS))
            if rng.random() < 0.5:
                words = rng.choice(self.openings).split() + words
            if len(words) > 6 and rng.random() < 0.2:  # a recogniser cutting the end off
                words = words[: rng.randint(len(words) * 3 // 4, len(words))]
            return "", " ".join(words)
        if style == "chat":
            out = []
            for word in re.split(r"(\s+)", strip_accents(text) if rng.random() < 0.8 else text):
                low = word.lower()
                if low in _ABBREVIATIONS and rng.random() < 0.6:
                    word = _ABBREVIATIONS[low]
                elif len(word) > 4 and word.isalpha() and rng.random() < 0.08:
                    i = rng.randrange(len(word) - 1)
                    word = word[:i] + word[i + 1] + word[i] + word[i + 2:] if rng.random() < 0.5 else word[:i] + word[i + 1:]
                out.append(word)
            text = "".join(out).replace("¿", "").replace("¡", "")
            return "", text.lower() if rng.random() < 0.7 else text
        if style == "mayusculas":
            return subject.upper(), body.upper()
        if style == "formal":
            opening = rng.choice(self.openings).capitalize()
            closing = rng.choice(self.closings).capitalize()
            return subject, f"{opening},\n\n{body.strip()}\n\n{closing}."
        if style == "correo_largo":
            name = rng.choice(_NAMES)
            parts = [body.strip(), rng.choice(_SIGNATURES).format(name=name)]
            if rng.random() < 0.5:
                parts.append(_NOTICE)
            if quoted:
                header = f"El lun, {rng.randint(1, 28)} nov 2025 a las {rng.randint(7, 17)}:{rng.randint(10, 59)}, " \
                         "Soporte <soporte@siempre.net.co> escribió:"
                parts.append(header + "\n" + "\n".join("> " + line for line in quoted.splitlines()))
            return subject or "RE: " + rng.choice(("Solicitud", "Caso", "Consulta", "Pendiente")), "\n\n".join(parts)
        raise ValueError(f"unknown style {style!r}: expected one of {', '.join(STYLES)}")

    def copies(self, rows, n: int, *, seed: int = 0):
        """``n`` altered copies of every row (pydantic models with ``subject``/``body``/``channel``), each in a
        style drawn at random; a copy keeps its original's label, group and style (so folds keep them together)."""
        rng = random.Random(seed)
        out = []
        for row in rows:
            for k in range(n):
                style = rng.choice(STYLES)
                other = rows[rng.randrange(len(rows))]
                subject, body = self(row.subject, row.body, style, rng, quoted=other.body)
                if not (subject + body).strip():
                    continue
                channel = "email" if subject else "chat"
                out.append(row.model_copy(update={"id": f"{row.id}~{style}{k}", "subject": subject, "body": body,
                                                  "channel": channel, "source": f"variant-of:{row.id}"}))
        return out
