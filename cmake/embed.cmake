# Turns a kernel file into a C header holding its text: cmake -DIN=f.cl -DOUT=f_cl.h -DVAR=name -P
file(READ ${IN} text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n\"" text "${text}")
file(WRITE ${OUT}.tmp "/* generated from ${IN}; do not edit */\nstatic const char ${VAR}[] =\n\"${text}\";\n")
file(RENAME ${OUT}.tmp ${OUT})
