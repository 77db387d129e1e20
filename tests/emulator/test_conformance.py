"""The strict-mode checker itself (conformance.check_value): an answer is held to botocore's model
shape by shape. A table of answers to Lambda's GetAlias and the problem each must be named by."""

import pytest

from conformance import check_value, model

GET_ALIAS = model("lambda").operation_model("GetAlias").output_shape


@pytest.mark.parametrize("answer, problem", [
    ({"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}}}, None),
    ([], "GetAlias: expected an object (AliasConfiguration), got list"),
    ({"FunctionVersion": 5}, "GetAlias.FunctionVersion: expected a string (Version), got int 5"),
    ({"FunctionVersion": ""}, "GetAlias.FunctionVersion: length 0 outside Version's 1-1024"),
    ({"RoutingConfig": []}, "expected an object (AliasRoutingConfiguration), got list"),
    ({"RoutingConfig": {"AdditionalVersionWeights": []}}, "expected a map (AdditionalVersionWeights), got list"),
    ({"RoutingConfig": {"AdditionalVersionWeights": {"2": "x"}}}, "expected a number (Weight), got str 'x'"),
    ({"RoutingConfig": {"AdditionalVersionWeights": {"2": True}}}, "expected a number (Weight), got bool True"),
    ({"RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}}}, "1.5 outside Weight's range 0.0-1.0"),
    ({"Nonsense": 1}, "AliasConfiguration has no such member"),
])
def test_an_answer_is_held_to_the_model(answer, problem):
    problems: list[str] = []
    check_value(GET_ALIAS, answer, "GetAlias", problems)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems
