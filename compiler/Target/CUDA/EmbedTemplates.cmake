# Writes OUT: one `{"NAME", R"FUSIONCUDA(TEXT)FUSIONCUDA"},` entry per DIR/*.cuh template,
# NAME being the file name without .cuh.
file(GLOB TEMPLATES "${DIR}/*.cuh")
list(SORT TEMPLATES)
set(content "// Generated from compiler/Target/CUDA/templates by EmbedTemplates.cmake.\n")
foreach(path IN LISTS TEMPLATES)
  get_filename_component(name "${path}" NAME_WE)
  file(READ "${path}" text)
  string(APPEND content "{\"${name}\", R\"FUSIONCUDA(${text})FUSIONCUDA\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "${content}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
