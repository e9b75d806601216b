"""REST API v1: decisions, with the same rules as the review screen."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from dedup.access import CanDecide
from dedup.api import ApiView, errors

from . import services
from .models import Decision


class DecisionIn(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=[a for a in Decision.Action.choices if a[0] != Decision.Action.UNDO]
    )
    canonical = serializers.IntegerField(required=False, help_text="with merge: the id of the video to keep")

    def validate(self, attrs):
        if attrs["action"] == Decision.Action.MERGE and attrs.get("canonical") is None:
            raise serializers.ValidationError({"canonical": ["merge needs the id of the video to keep"]})
        return attrs


# The schema's view of DecisionIn: which actions need `canonical` is part of the contract, and
# OpenAPI 3.0 says "required when action is merge" only as a choice of two bodies.
class VerdictIn(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=[
            a for a in Decision.Action.choices if a[0] not in (Decision.Action.UNDO, Decision.Action.MERGE)
        ]
    )


class MergeIn(serializers.Serializer):
    action = serializers.ChoiceField(choices=[Decision.Action.MERGE])
    canonical = serializers.IntegerField(help_text="the id of the video to keep: the pair's a or b")


class BodyRequiredSchema(AutoSchema):
    """drf-spectacular marks a oneOf body optional (it finds no `required` list on it); a
    decision without a body is a 400, so the schema must say the body is required."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation and "requestBody" in operation:
            operation["requestBody"]["required"] = True
        return operation


class DecisionOut(serializers.ModelSerializer):
    class Meta:
        model = Decision
        fields = [
            "id",
            "pair",
            "video_a",
            "video_b",
            "action",
            "canonical",
            "user",
            "created_at",
            "pair_score",
            "pair_label",
        ]


class DecisionApi(ApiView):
    permission_classes = [CanDecide]
    schema = BodyRequiredSchema()

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="DecisionIn",
            serializers=[VerdictIn, MergeIn],
            resource_type_field_name=None,
        ),
        responses={201: DecisionOut, **errors(400, 404, 409, 413, 415)},
    )
    def post(self, request, pair_id: int):
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            decision = services.pair_decide(
                pair_id=pair_id,
                user=request.user,
                action=data.validated_data["action"],
                canonical_id=data.validated_data.get("canonical"),
            )
        except services.PairGone as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        except services.DecisionInvalid as exc:
            return Response({"canonical": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        except services.DecisionRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(DecisionOut(decision).data, status=status.HTTP_201_CREATED)
