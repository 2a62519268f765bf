# Writes the plan schema (.fbs files) as C++ raw string literals into ${OUT}.
file(READ ${IN_DIR}/ops.fbs OPS)
file(READ ${IN_DIR}/fusion_plan.fbs PLAN)
# The root file includes ops.fbs; the embedded copy is parsed with both texts concatenated.
string(REPLACE "include \"ops.fbs\";" "" PLAN "${PLAN}")
file(WRITE ${OUT} "// Generated from runtime/schema/*.fbs; do not edit.\n#pragma once\nnamespace fusion::rt {\ninline const char *kPlanSchemaText = R\"FBS(${OPS}\n${PLAN})FBS\";\n}\n")
