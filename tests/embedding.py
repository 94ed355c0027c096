"""A stand-in embedding model for tests: words of one concept share a dimension, so texts can mean alike."""

import re

from chatcore.backends import BackendError

CONCEPTS = (
    ("car", "cars", "automobile", "vehicle", "vehicles"),
    ("money", "budget", "cost", "costs", "price", "spending"),
    ("river", "rivers", "stream", "water"),
)


def concept_vector(text: str) -> list[float]:
    """One dimension per concept, counting its words in the text; other words count nowhere."""
    words = re.findall(r"[^\W_]+", text.lower())
    return [float(sum(word in concept for word in words)) for concept in CONCEPTS]


class ConceptEmbedder:
    """An Embedder over `concept_vector` that records its calls; `failing` makes it fail as an unreachable Ollama."""

    def __init__(self, model: str = "concepts", failing: bool = False):
        self.model = model
        self.failing = failing
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str], question: bool = False) -> list[list[float]]:
        """One concept vector per text."""
        self.calls.append(list(texts))
        if self.failing:
            raise BackendError("Cannot reach Ollama.")
        return [concept_vector(text) for text in texts]
