"""The notes API's input and output: validation matches the model (title 1..200 characters,
body optional), so the generated schema says exactly what the code accepts."""

from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Note

# PostgreSQL cannot store NUL in text: DRF refuses it, and the schema has to say so too.
_NO_NUL = RegexValidator(r"^[^\x00]*\Z", message="Null characters are not allowed.")


class StrictCharField(serializers.CharField):
    """A string, kept as sent: DRF's CharField would accept 5 as "5" and strip "  " to a
    blank, both unlike the schema's `type: string`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TitleField(StrictCharField):
    """DRF's NUL check swapped for the same rule as a pattern, which the schema shows."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ] + [_NO_NUL]


# Schema given whole: drf-spectacular turns a blank-allowed field with a `pattern` into a
# oneOf that "" matches twice (invalid), so the NUL rule is a `not` here.
@extend_schema_field({"type": "string", "default": "", "not": {"pattern": "\\u0000"}})
class OptionalTextField(StrictCharField):
    """A string that may be empty; left out, it is "" on create and PUT, unchanged on PATCH."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_blank=True, default="", **kwargs)


class NoteSerializer(serializers.ModelSerializer):
    title = TitleField(max_length=Note._meta.get_field("title").max_length)
    body = OptionalTextField()

    class Meta:
        model = Note
        fields = ["id", "title", "body", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
