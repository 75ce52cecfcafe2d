"""Query depth limit that counts introspection fields too.

Strawberry's QueryDepthLimiter skips fields starting with ``__``, which leaves
``__type { ofType { ofType ... } }`` unbounded. This rule counts every field, follows
fragments (each once per path, so cycles terminate) and reports the deepest operation.
The standard introspection query (what GraphiQL sends) is 15 deep: the default limit,
15, admits it; the deepest query of our own schema is 5.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)


def selection_depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    visited: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            depth = 1 + selection_depth(selection.selection_set, fragments, visited)
        elif isinstance(selection, InlineFragmentNode):
            depth = selection_depth(selection.selection_set, fragments, visited)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in visited:
                continue  # unknown or cyclic spreads are reported by the standard rules
            depth = selection_depth(fragment.selection_set, fragments, visited | {name})
        else:
            continue
        deepest = max(deepest, depth)
    return deepest


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = {
                d.name.value: d
                for d in self.context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            depth = selection_depth(node.selection_set, fragments)
            if depth > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(
                    GraphQLError(
                        f"'{name}' is {depth} fields deep, over the limit of {max_depth}.",
                        node,
                    )
                )

    return DepthLimit
