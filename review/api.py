"""REST API v1: decisions, with the same rules as the review screen."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import Decision
from .roles import can_decide


class CanDecide(BasePermission):
    message = "Only moderators and admins decide pairs."

    def has_permission(self, request, view):
        return can_decide(request.user)


class DecisionIn(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=[a for a in Decision.Action.choices if a[0] != Decision.Action.UNDO]
    )
    canonical = serializers.IntegerField(required=False, help_text="with merge: the id of the video to keep")


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


class DecisionApi(APIView):
    permission_classes = [CanDecide]

    @extend_schema(request=DecisionIn, responses={201: DecisionOut, 409: None})
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
        except services.DecisionRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(DecisionOut(decision).data, status=status.HTTP_201_CREATED)
