//===- fused_elementwise.h - The `expr` program of fused_elementwise ------===//
//
// Part of the FusionLLM runtime.
//
// A `fused_elementwise` kernel (fplan-fuse-elementwise) evaluates a chain or tree of
// elementwise ops per element; its `expr` string attribute is a small SSA program, e.g.
//
//   %0 = cast.f32 %in0; %1 = add.f32 %0, %in1; %2 = cast.bf16 %1; out0 = %2
//
// Grammar (tokens separated by optional spaces; docs/op-kinds.md has the math):
//
//   program := stmt (';' stmt)* ';' 'out0' '=' '%' N
//   stmt    := '%' N '=' OP '.' TYPE value (',' value)? (',' NUMBER)?
//   value   := '%in' N | '%' N
//   TYPE    := 'f32' | 'bf16' | 'f16'
//
// Statement k defines %k (k = 0, 1, ... in order) and may use the launch's inputs and the
// values of earlier statements. OP is one of add, sub, mul, swiglu (two values), silu,
// sigmoid, exp, neg, softplus, cast (one value), scale, softcap (one value and a NUMBER:
// the factor, the cap). TYPE is the element type the result is rounded to (the type of the
// buffer the unfused op stored it in). The inputs used are %in0 .. %in(n-1), each at least
// once; `out0` names a statement value, stored to the launch's one output.
//
// Header-only and dependent on the standard library only: the compiler (plan verifier,
// fplan-fuse-elementwise, the CUDA generator) and the runtime (plan loading, the CPU
// reference kernel) share this one parser.
//
//===----------------------------------------------------------------------===//

#pragma once

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt::fused {

/// Storage type a value is rounded to.
enum class ElemType { F32, BF16, F16 };

/// The ops a program may apply (the elementwise plan kinds).
enum class Op { Add, Sub, Mul, Swiglu, Silu, Sigmoid, Exp, Neg, Softplus, Cast, Scale, Softcap };

/// `%inN` (isInput) or `%N`.
struct Value {
  bool isInput = false;
  unsigned index = 0;
};

struct Stmt {
  Op op = Op::Cast;
  ElemType type = ElemType::F32;
  Value args[2];
  unsigned numArgs = 0;
  /// scale's factor, softcap's cap.
  double constant = 0;
};

struct Program {
  std::vector<Stmt> stmts;
  unsigned numInputs = 0;
  /// The statement whose value is stored to out0.
  unsigned output = 0;
};

struct OpInfo {
  Op op;
  const char *name;
  unsigned numValues;
  bool hasConstant;
};

inline const OpInfo *opInfos(size_t &count) {
  static const OpInfo infos[] = {
      {Op::Add, "add", 2, false},        {Op::Sub, "sub", 2, false},
      {Op::Mul, "mul", 2, false},        {Op::Swiglu, "swiglu", 2, false},
      {Op::Silu, "silu", 1, false},      {Op::Sigmoid, "sigmoid", 1, false},
      {Op::Exp, "exp", 1, false},        {Op::Neg, "neg", 1, false},
      {Op::Softplus, "softplus", 1, false}, {Op::Cast, "cast", 1, false},
      {Op::Scale, "scale", 1, true},     {Op::Softcap, "softcap", 1, true},
  };
  count = sizeof(infos) / sizeof(infos[0]);
  return infos;
}

inline const OpInfo &getOpInfo(Op op) {
  size_t count;
  const OpInfo *infos = opInfos(count);
  for (size_t i = 0; i < count; ++i)
    if (infos[i].op == op)
      return infos[i];
  return infos[0];
}

/// The op called `name` (a plan kernel kind), if it is one a program may apply.
inline const OpInfo *lookupOp(std::string_view name) {
  size_t count;
  const OpInfo *infos = opInfos(count);
  for (size_t i = 0; i < count; ++i)
    if (name == infos[i].name)
      return &infos[i];
  return nullptr;
}

inline const char *typeName(ElemType type) {
  switch (type) {
  case ElemType::F32:
    return "f32";
  case ElemType::BF16:
    return "bf16";
  case ElemType::F16:
    return "f16";
  }
  return "f32";
}

inline std::optional<ElemType> parseTypeName(std::string_view name) {
  for (ElemType type : {ElemType::F32, ElemType::BF16, ElemType::F16})
    if (name == typeName(type))
      return type;
  return std::nullopt;
}

/// The shortest decimal text that strtod reads back as exactly `value`.
inline std::string formatNumber(double value) {
  char text[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value)
      break;
  }
  return text;
}

inline std::string formatValue(const Value &value) {
  return (value.isInput ? "%in" : "%") + std::to_string(value.index);
}

/// The program as text, in the grammar `parse` reads.
inline std::string format(const Program &program) {
  std::string text;
  for (size_t k = 0; k < program.stmts.size(); ++k) {
    const Stmt &stmt = program.stmts[k];
    const OpInfo &info = getOpInfo(stmt.op);
    text += "%" + std::to_string(k) + " = " + info.name + "." + typeName(stmt.type) + " ";
    for (unsigned a = 0; a < stmt.numArgs; ++a)
      text += (a ? ", " : "") + formatValue(stmt.args[a]);
    if (info.hasConstant)
      text += ", " + formatNumber(stmt.constant);
    text += "; ";
  }
  return text + "out0 = %" + std::to_string(program.output);
}

namespace detail {

class Parser {
public:
  Parser(std::string_view text, std::string &error) : text_(text), error_(error) {}

  bool parse(Program &program) {
    program = Program();
    std::vector<bool> inputUsed;
    while (true) {
      skipSpaces();
      if (consumeWord("out0")) {
        skipSpaces();
        if (!expect('='))
          return false;
        Value value;
        if (!parseValue(value, program, inputUsed))
          return false;
        if (value.isInput)
          return fail("out0 must name a statement value (%N), not an input");
        program.output = value.index;
        skipSpaces();
        if (pos_ != text_.size())
          return fail("expected the end of the program after out0");
        break;
      }
      if (!parseStmt(program, inputUsed))
        return false;
      skipSpaces();
      if (!expect(';'))
        return false;
    }
    if (program.stmts.empty())
      return fail("the program has no statements");
    program.numInputs = static_cast<unsigned>(inputUsed.size());
    for (size_t i = 0; i < inputUsed.size(); ++i)
      if (!inputUsed[i])
        return fail("%in" + std::to_string(i) + " is never used (inputs are %in0 .. %in" +
                    std::to_string(inputUsed.size() - 1) + ", each used)");
    return true;
  }

private:
  bool fail(const std::string &message) {
    error_ = "at character " + std::to_string(pos_) + ": " + message;
    return false;
  }
  void skipSpaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n'))
      ++pos_;
  }
  bool expect(char c) {
    skipSpaces();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return fail(std::string("expected '") + c + "'");
  }
  bool consumeWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word)
      return false;
    pos_ += word.size();
    return true;
  }
  std::string_view identifier() {
    size_t begin = pos_;
    while (pos_ < text_.size() &&
           ((text_[pos_] >= 'a' && text_[pos_] <= 'z') || (text_[pos_] >= '0' && text_[pos_] <= '9')))
      ++pos_;
    return text_.substr(begin, pos_ - begin);
  }
  bool parseIndex(unsigned &index) {
    size_t begin = pos_;
    unsigned long long value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<unsigned>(text_[pos_] - '0');
      if (value > 1000000)
        return fail("index too large");
      ++pos_;
    }
    if (pos_ == begin)
      return fail("expected a number");
    index = static_cast<unsigned>(value);
    return true;
  }
  bool parseValue(Value &value, const Program &program, std::vector<bool> &inputUsed) {
    if (!expect('%'))
      return false;
    size_t start = pos_ - 1;
    value.isInput = consumeWord("in");
    if (!parseIndex(value.index))
      return false;
    if (value.isInput) {
      if (value.index >= inputUsed.size())
        inputUsed.resize(value.index + 1, false);
      inputUsed[value.index] = true;
    } else if (value.index >= program.stmts.size()) {
      pos_ = start;
      return fail("%" + std::to_string(value.index) + " is used before it is defined");
    }
    return true;
  }
  bool parseStmt(Program &program, std::vector<bool> &inputUsed) {
    unsigned index = 0;
    if (!expect('%') || !parseIndex(index))
      return false;
    if (index != program.stmts.size())
      return fail("statement " + std::to_string(program.stmts.size()) + " must define %" +
                  std::to_string(program.stmts.size()) + ", not %" + std::to_string(index));
    if (!expect('='))
      return false;
    skipSpaces();
    size_t opPos = pos_;
    std::string_view name = identifier();
    const OpInfo *info = lookupOp(name);
    if (!info) {
      pos_ = opPos;
      return fail("unknown op '" + std::string(name) +
                  "' (add, sub, mul, swiglu, silu, sigmoid, exp, neg, softplus, cast, scale, "
                  "softcap)");
    }
    if (!expect('.'))
      return false;
    size_t typePos = pos_;
    std::string_view typeText = identifier();
    std::optional<ElemType> type = parseTypeName(typeText);
    if (!type) {
      pos_ = typePos;
      return fail("unknown element type '" + std::string(typeText) + "' (f32, bf16, f16)");
    }
    Stmt stmt;
    stmt.op = info->op;
    stmt.type = *type;
    stmt.numArgs = info->numValues;
    for (unsigned a = 0; a < info->numValues; ++a) {
      if (a && !expect(','))
        return false;
      skipSpaces();
      if (!parseValue(stmt.args[a], program, inputUsed))
        return false;
    }
    if (info->hasConstant) {
      if (!expect(','))
        return false;
      skipSpaces();
      std::string rest(text_.substr(pos_, 64));
      char *end = nullptr;
      errno = 0;
      double value = std::strtod(rest.c_str(), &end);
      if (end == rest.c_str() || errno == ERANGE || !std::isfinite(value))
        return fail(std::string(info->name) + " needs a finite number after its operand");
      pos_ += static_cast<size_t>(end - rest.c_str());
      if (info->op == Op::Softcap && !(value > 0))
        return fail("softcap needs a positive cap, got " + formatNumber(value));
      stmt.constant = value;
    }
    program.stmts.push_back(stmt);
    return true;
  }

  std::string_view text_;
  std::string &error_;
  size_t pos_ = 0;
};

} // namespace detail

/// Reads `text` into `program`; on failure returns false with `error` saying where and why.
inline bool parse(std::string_view text, Program &program, std::string &error) {
  return detail::Parser(text, error).parse(program);
}

} // namespace fusion::rt::fused
