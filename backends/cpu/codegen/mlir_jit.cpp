// Lowering and compilation of generated kernels. Algorithm:
//  1. Each kernel is emitted into a module of its own (whose text is the kernel's dump),
//     verified, then moved into the batch's one module.
//  2. The module is canonicalized (CSE of the index arithmetic), f32 math ops are replaced by
//     polynomial approximations (greedy rewrite: weft's rational erf, RationalErf, its
//     range-reduced exp, RangeReducedExp, and the math dialect's for the rest), then lowered
//     to the LLVM dialect: affine -> arith, scf -> cf, math -> LLVM intrinsics (and libm
//     calls for what is left: f64 tanh/erf), arith, memref, func (bare-pointer calling
//     convention: a memref argument is one pointer) and cf -> LLVM.
//  3. The LLVM module gets a packed wrapper `NAME_packed(void** args)` per kernel (args[i]
//     points to argument i) and is optimized at O3 by a target machine for the host CPU name
//     and features, so that the loop vectorizer uses the host's vector width. The JIT's
//     target machine then emits it as an object file, which a new ORC LLJIT (kept alive by
//     MlirJit) links in memory; the object is handed back so that KernelCompiler can store
//     it in its disk cache, and load() links such a stored object the same way, so the code
//     that runs is the same whether it was compiled now or by an earlier process.
//     (MLIR's ExecutionEngine is not used: its destructor JIT-compiles deinitialization code,
//     which crashes when a compiler held in a static is destroyed at exit.)
//  4. A bundle's object (emitBundle) is step 3 for a position-independent target machine
//     (the host's CPU name and features, or a named x86-64 CPU with its default features);
//     after optimization, which sees the same IR as the JIT's, every definition is made
//     local to the object and the weft_kernel table and the weft_bundle descriptor
//     (runtime/weft.h) are added as constants, the descriptor being the one global symbol.
//  5. jitTargetIdentity() names the LLVM version and the host CPU the object code is for,
//     for the disk cache's keys.
// Every MLIR diagnostic is captured and becomes a weft::Error.
#include "backends/cpu/codegen/mlir_jit.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include "backends/cpu/codegen/assembly_split.h"
#include "backends/cpu/codegen/mlir_emitter.h"
#include "ir/error.h"
#include "runtime/cpu_features.h"
#include "runtime/weft.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/Dominators.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Object/ObjectFile.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/xxhash.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/Transforms/Utils/Cloning.h"
#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MathToLibm/MathToLibm.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/Passes.h"

namespace weft::cpu {
namespace {

void initializeNativeTarget() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

/// This CPU's features, and on one with AVX-512 the tuning that lets LLVM's vectorizers use
/// its 512-bit registers: LLVM's Intel tunings (rocketlake, icelake-server, ...) prefer
/// 256-bit vectors to spare the clock, but oneDNN's kernels run 512-bit code in the same steps
/// anyway. On stop 21's Intel Xeon the generated kernels of gpt's training step took 9.7-9.8
/// ms instead of 11.3-12.1 (its inference's 1.1-1.3 instead of 1.6-2.0), the oneDNN steps
/// around them no slower.
llvm::SubtargetFeatures hostFeatureSet() {
  llvm::SubtargetFeatures features;
  const llvm::StringMap<bool> host = llvm::sys::getHostCPUFeatures();
  for (const auto& feature : host) features.AddFeature(feature.first(), feature.second);
  if (auto avx512 = host.find("avx512f"); avx512 != host.end() && avx512->second)
    features.AddFeature("prefer-256-bit", false);
  return features;
}

/// A target machine builder for this CPU: its triple, CPU name and features (hostFeatureSet).
llvm::orc::JITTargetMachineBuilder hostMachineBuilder() {
  llvm::orc::JITTargetMachineBuilder builder{llvm::Triple(llvm::sys::getProcessTriple())};
  builder.setCPU(llvm::sys::getHostCPUName().str());
  builder.addFeatures(hostFeatureSet().getFeatures());
  builder.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return builder;
}

std::unique_ptr<llvm::TargetMachine> hostMachine() {
  auto machine = hostMachineBuilder().createTargetMachine();
  if (!machine) throw Error("cannot create a target machine for the host CPU: " + llvm::toString(machine.takeError()));
  return std::move(*machine);
}

/// The host's CPU features as a target feature string ("+avx2,-avx512f,...").
std::string hostFeatures() { return hostFeatureSet().getString(); }

/// A position-independent target machine for objects that run on `target` (empty fields:
/// the host's triple, or its CPU name and features; a named CPU gets its default features).
/// Throws weft::Error for a triple of another architecture or object format, or an unknown CPU.
std::unique_ptr<llvm::TargetMachine> objectMachine(const ObjectTarget& target) {
  llvm::Triple host(llvm::sys::getProcessTriple());
  llvm::Triple triple = target.triple.empty() ? host : llvm::Triple(llvm::Triple::normalize(target.triple));
  std::string label = triple.str();
  if (triple.getArch() != host.getArch())
    throw Error("cannot emit code for " + target.triple + ": only the host architecture (" +
                llvm::Triple::getArchTypeName(host.getArch()).str() + ") is supported");
  if (triple.getObjectFormat() != llvm::Triple::ELF)
    throw Error("cannot emit code for " + target.triple + ": bundles are ELF objects, and its object format is not ELF");
  std::string problem;
  const llvm::Target* llvmTarget = llvm::TargetRegistry::lookupTarget(label, problem);
  if (!llvmTarget) throw Error("cannot emit code for " + label + ": " + problem);
  std::string cpu = target.cpu, features;
  if (cpu.empty()) {
    cpu = llvm::sys::getHostCPUName().str();
    features = hostFeatures();
  } else {  // checked first: LLVM only warns on stderr about an unknown CPU and ignores it
    std::unique_ptr<llvm::MCSubtargetInfo> info(llvmTarget->createMCSubtargetInfo(label, "", ""));
    if (!info || !info->isCPUStringValid(cpu))
      throw Error("unknown CPU name '" + cpu + "' for " + label + " (LLVM's names: x86-64-v2, x86-64-v3, " +
                  "x86-64-v4, skylake-avx512, znver3, ...)");
  }
  std::unique_ptr<llvm::TargetMachine> machine(
      llvmTarget->createTargetMachine(label, cpu, features, llvm::TargetOptions(), llvm::Reloc::PIC_,
                                      llvm::CodeModel::Small, llvm::CodeGenOptLevel::Aggressive));
  if (!machine) throw Error("cannot create a target machine for " + label + " (CPU " + cpu + ")");
  return machine;
}

/// Throws unless `name` is a C identifier.
void checkIdentifier(const std::string& name) {
  bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok) throw Error("bundle name '" + name + "' is not a C identifier");
}

/// Makes every definition of `module` local to its object file.
void internalize(llvm::Module& module) {
  for (llvm::Function& function : module)
    if (!function.isDeclaration() && !function.hasLocalLinkage()) function.setLinkage(llvm::GlobalValue::InternalLinkage);
  for (llvm::GlobalVariable& global : module.globals())
    if (!global.isDeclaration() && !global.hasLocalLinkage()) global.setLinkage(llvm::GlobalValue::InternalLinkage);
}

/// The features of runtime::kCheckedCpuFeatures that `machine` generates code for, comma-separated.
std::string targetFeatures(const llvm::TargetMachine& machine) {
  const llvm::MCSubtargetInfo* info = machine.getMCSubtargetInfo();
  std::string list;
  for (const char* name : runtime::kCheckedCpuFeatures)
    if (info && info->checkFeatures(std::string("+") + name)) list += (list.empty() ? "" : ",") + std::string(name);
  return list;
}

/// Adds the bundle's weft_kernel table and its descriptor NAME_bundle (layouts of
/// runtime/weft.h: every field a pointer or int64_t, so no padding) to `module`, whose
/// kernels and their packed wrappers it names.
void addBundleDescriptor(llvm::Module& module, const BundleRequest& bundle, const llvm::TargetMachine& machine) {
  const std::string symbol = bundle.symbols.name + "_bundle";
  if (module.getNamedValue(symbol)) throw Error("bundle symbol " + symbol + " clashes with a generated kernel");
  llvm::LLVMContext& context = module.getContext();
  llvm::Type* pointer = llvm::PointerType::getUnqual(context);
  llvm::Type* i64 = llvm::Type::getInt64Ty(context);
  auto* kernelType = llvm::StructType::create(context, {pointer, pointer, i64, i64, i64, i64}, "weft_kernel");
  auto* bundleType =
      llvm::StructType::create(context, {i64, pointer, pointer, i64, pointer, i64, pointer, i64}, "weft_bundle");
  auto integer = [&](int64_t value) { return llvm::ConstantInt::get(i64, static_cast<uint64_t>(value), true); };
  auto privateConstant = [&](llvm::Constant* value, const std::string& name) {
    auto* global = new llvm::GlobalVariable(module, value->getType(), true, llvm::GlobalValue::PrivateLinkage, value,
                                            symbol + "." + name);
    global->setUnnamedAddr(llvm::GlobalValue::UnnamedAddr::Global);
    return global;
  };
  auto string = [&](const std::string& text, const std::string& name) {
    return privateConstant(llvm::ConstantDataArray::getString(context, text, true), name);
  };
  std::vector<llvm::Constant*> kernelNames;
  for (const KernelRequest& request : bundle.kernels) kernelNames.push_back(string(request.name, request.name));
  std::vector<llvm::Constant*> rows;
  for (const BundleEntry& entry : bundle.entries) {
    const std::string& name = bundle.kernels.at(static_cast<size_t>(entry.kernel)).name;
    llvm::Function* packed = module.getFunction(name + "_packed");
    if (!packed) throw Error("the lowered bundle has no packed kernel " + name);
    rows.push_back(llvm::ConstantStruct::get(
        kernelType, {kernelNames[static_cast<size_t>(entry.kernel)], packed, integer(entry.numInputs),
                     integer(entry.parallelExtent), integer(entry.work), integer(entry.partialSums ? 1 : 0)}));
  }
  llvm::Constant* table = llvm::ConstantPointerNull::get(llvm::PointerType::getUnqual(context));
  if (!rows.empty())
    table = privateConstant(llvm::ConstantArray::get(llvm::ArrayType::get(kernelType, rows.size()), rows), "kernels");
  const std::string& program = bundle.symbols.program;
  llvm::Constant* fields[] = {integer(WEFT_ABI_VERSION),
                              string(bundle.symbols.name, "name"),
                              string(program, "program"),
                              integer(static_cast<int64_t>(program.size())),
                              table,
                              integer(static_cast<int64_t>(rows.size())),
                              string(targetFeatures(machine), "cpu_features"),
                              integer(bundle.symbols.channelBlock)};
  auto* descriptor = new llvm::GlobalVariable(module, bundleType, true, llvm::GlobalValue::ExternalLinkage,
                                              llvm::ConstantStruct::get(bundleType, fields), symbol);
  descriptor->setAlignment(llvm::Align(8));
}

/// Machine code (assembly or object) of `module` for `machine`.
std::string emitMachineCode(llvm::Module& module, llvm::TargetMachine& machine, llvm::CodeGenFileType type) {
  llvm::SmallString<0> buffer;
  llvm::raw_svector_ostream stream(buffer);
  llvm::legacy::PassManager passes;
  if (machine.addPassesToEmitFile(passes, stream, nullptr, type))
    throw Error(std::string("the target machine cannot emit ") +
                (type == llvm::CodeGenFileType::AssemblyFile ? "assembly" : "objects"));
  passes.run(module);
  return std::string(buffer.str());
}

/// erf on f32 as one rational function: x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (beyond,
/// erf rounds to +-1), the result clamped to [-1, 1]; 11 multiply-adds and one division,
/// where the math dialect's approximation computes three intervals' polynomials and selects
/// among them (GELU's gradient kernel took twice as long with it). The coefficients are this
/// project's fit (weighted least squares, reweighted toward the smallest largest error) of
/// erf on [0, 4], which scripts/fit_erf.py repeats: in f32 the result is within 3.9e-7 of
/// erf, and within 2.4e-7 relative where |x| < 1. Registered with a higher benefit than the
/// math dialect's pattern.
struct RationalErf : mlir::OpRewritePattern<mlir::math::ErfOp> {
  explicit RationalErf(mlir::MLIRContext* context) : OpRewritePattern(context, /*benefit=*/2) {}

  mlir::LogicalResult matchAndRewrite(mlir::math::ErfOp op, mlir::PatternRewriter& rewriter) const override {
    if (!op.getType().isF32()) return mlir::failure();
    static constexpr double kNumerator[] = {1.128379193e+00, 1.836164897e-01, 5.439929162e-02, 3.822002479e-03,
                                            3.910286549e-04, 5.029762638e-06, -1.487750166e-08};
    static constexpr double kDenominator[] = {1.0, 4.960595958e-01, 1.135615982e-01, 1.544802424e-02,
                                              1.317164908e-03, 6.636404702e-05};
    mlir::Location loc = op.getLoc();
    auto constant = [&](double value) -> mlir::Value {
      return rewriter.create<mlir::arith::ConstantOp>(loc, rewriter.getF32FloatAttr(static_cast<float>(value)));
    };
    auto clamp = [&](mlir::Value v, double bound) -> mlir::Value {  // NaN stays NaN
      mlir::Value low = rewriter.create<mlir::arith::MaximumFOp>(loc, v, constant(-bound));
      return rewriter.create<mlir::arith::MinimumFOp>(loc, low, constant(bound));
    };
    auto polynomial = [&](mlir::Value z, const auto& coefficients) {  // Horner, lowest power first in the table
      mlir::Value sum = constant(coefficients[std::size(coefficients) - 1]);
      for (size_t k = std::size(coefficients) - 1; k-- > 0;)
        sum = rewriter.create<mlir::math::FmaOp>(loc, sum, z, constant(coefficients[k]));
      return sum;
    };
    mlir::Value x = clamp(op.getOperand(), 4.0);
    mlir::Value z = rewriter.create<mlir::arith::MulFOp>(loc, x, x);
    mlir::Value numerator = rewriter.create<mlir::arith::MulFOp>(loc, x, polynomial(z, kNumerator));
    mlir::Value ratio = rewriter.create<mlir::arith::DivFOp>(loc, numerator, polynomial(z, kDenominator));
    rewriter.replaceOp(op, clamp(ratio, 1.0));
    return mlir::success();
  }
};

/// exp on f32 by range reduction to a degree-6 polynomial: with n = round(x / ln 2) (read
/// from the low bits of x log2(e) + 1.5 * 2^23 + 126, which hold n + 126) and r = x - n ln 2
/// (ln 2 in two parts), exp(x) = P(r) * 2^(n - 1), P(r) ~ 2 e^r, 2^(n - 1) those low bits
/// shifted into the exponent. x is first clamped to [-87, 88.7229] (NaN passes the clamps):
/// n - 1 stays a normal exponent but for n = -126, whose bits are zero (exp(x) below 2.0e-38
/// becomes 0), and past ln(FLT_MAX) the product overflows to infinity. The coefficients are
/// this project's fit (scripts/fit_exp.py): within 1.06 ulp of exp. 14 operations, where the
/// math dialect's approximation also clamps n, converts it to an integer and adds the bias
/// (and LLVM, short of registers for its constants, copied them around the loop): ddpm's
/// GroupNorm + SiLU kernel on one thread 0.70 -> 0.58 ms. Registered with a higher benefit
/// than the math dialect's pattern.
struct RangeReducedExp : mlir::OpRewritePattern<mlir::math::ExpOp> {
  explicit RangeReducedExp(mlir::MLIRContext* context) : OpRewritePattern(context, /*benefit=*/2) {}

  mlir::LogicalResult matchAndRewrite(mlir::math::ExpOp op, mlir::PatternRewriter& rewriter) const override {
    if (!op.getType().isF32()) return mlir::failure();
    static constexpr double kCoefficients[] = {2.000000001e+00, 2.000000080e+00, 9.999998287e-01, 3.333280714e-01,
                                               8.333657104e-02, 1.675229165e-02, 2.767525451e-03};
    mlir::Location loc = op.getLoc();
    auto constant = [&](double value) -> mlir::Value {
      return rewriter.create<mlir::arith::ConstantOp>(loc, rewriter.getF32FloatAttr(static_cast<float>(value)));
    };
    auto fma = [&](mlir::Value a, mlir::Value b, mlir::Value c) -> mlir::Value {
      return rewriter.create<mlir::math::FmaOp>(loc, a, b, c);
    };
    // bound when `x` lies past it on `side` (olt: below), else x: a NaN compares false and stays.
    auto clampAt = [&](mlir::Value x, mlir::arith::CmpFPredicate side, double bound) -> mlir::Value {
      mlir::Value limit = constant(bound);
      mlir::Value past = rewriter.create<mlir::arith::CmpFOp>(loc, side, x, limit);
      return rewriter.create<mlir::arith::SelectOp>(loc, past, limit, x);
    };
    mlir::Value x = clampAt(clampAt(op.getOperand(), mlir::arith::CmpFPredicate::OLT, -87.0),
                            mlir::arith::CmpFPredicate::OGT, 88.7229);
    mlir::Value magic = constant(12582912.0 + 126);  // 1.5 * 2^23 + 126: the low bits hold n + 126
    mlir::Value shifted = fma(x, constant(1.44269504), magic);
    mlir::Value n = rewriter.create<mlir::arith::SubFOp>(loc, shifted, magic);
    mlir::Value r = fma(n, constant(-0.693145752), x);
    r = fma(n, constant(-1.42860677e-06), r);
    mlir::Value p = constant(kCoefficients[std::size(kCoefficients) - 1]);
    for (size_t k = std::size(kCoefficients) - 1; k-- > 0;) p = fma(p, r, constant(kCoefficients[k]));
    mlir::Value bits = rewriter.create<mlir::arith::BitcastOp>(loc, rewriter.getI32Type(), shifted);
    mlir::Value by23 = rewriter.create<mlir::arith::ConstantOp>(loc, rewriter.getI32IntegerAttr(23));
    mlir::Value exponent = rewriter.create<mlir::arith::ShLIOp>(loc, bits, by23);  // (n + 126) << 23
    mlir::Value scale = rewriter.create<mlir::arith::BitcastOp>(loc, rewriter.getF32Type(), exponent);
    rewriter.replaceOpWithNewOp<mlir::arith::MulFOp>(op, p, scale);
    return mlir::success();
  }
};

/// Marks every loop of `function` with the loop metadata `name` = `value` (an i32 constant,
/// e.g. llvm.loop.vectorize.enable = 0).
void setLoopMetadata(llvm::Function& function, const char* name, int value) {
  llvm::DominatorTree dominators(function);
  llvm::LoopInfo loops(dominators);
  llvm::LLVMContext& context = function.getContext();
  for (llvm::Loop* loop : loops.getLoopsInPreorder()) {
    llvm::Metadata* setting[] = {
        llvm::MDString::get(context, name),
        llvm::ConstantAsMetadata::get(llvm::ConstantInt::get(llvm::Type::getInt32Ty(context), value))};
    // The setting first (LLVM reads the first of a name), then what the loop says already.
    llvm::SmallVector<llvm::Metadata*, 4> operands = {nullptr, llvm::MDNode::get(context, setting)};
    if (llvm::MDNode* previous = loop->getLoopID())
      for (unsigned i = 1; i < previous->getNumOperands(); ++i) operands.push_back(previous->getOperand(i));
    llvm::MDNode* id = llvm::MDNode::getDistinct(context, operands);
    id->replaceOperandWith(0, id);  // a loop id names itself first
    loop->setLoopID(id);
  }
}

/// Optimizes `module` with LLVM's O3 pipeline for `machine`, without loop unrolling: fully
/// unrolled inner loops (a row of 32) leave the next loop out (e.g. over channels, 4 KiB
/// apart) innermost, and the loop vectorizer then turns its strided loads into gathers. Kept
/// rolled, the innermost loop is the contiguous one and is vectorized (and interleaved) there.
void optimize(llvm::Module& module, llvm::TargetMachine& machine) {
  for (llvm::Function& function : module)
    if (!function.isDeclaration() && function.hasFnAttribute(codegen::kNoLoopVectorizeAttribute))
      setLoopMetadata(function, "llvm.loop.vectorize.enable", 0);
    else if (!function.isDeclaration() && function.hasFnAttribute(codegen::kNoInterleaveAttribute))
      setLoopMetadata(function, "llvm.loop.interleave.count", 1);
  llvm::PipelineTuningOptions tuning;
  tuning.LoopUnrolling = false;
  tuning.LoopInterleaving = true;
  tuning.LoopVectorization = true;
  tuning.SLPVectorization = true;
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager sccs;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder(&machine, tuning);
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(sccs);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, sccs, modules);
  builder.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3).run(module, modules);
}

/// Adds `NAME_packed(ptr args)`, which calls kernel NAME with argument i loaded from
/// *args[i]; the kernel itself is kept out of line (so it is compiled once).
void addPackedWrapper(llvm::Module& module, const std::string& name) {
  llvm::Function* kernel = module.getFunction(name);
  if (!kernel) throw Error("the lowered module has no kernel " + name);
  kernel->addFnAttr(llvm::Attribute::NoInline);
  llvm::LLVMContext& context = module.getContext();
  llvm::Type* pointer = llvm::PointerType::getUnqual(context);
  llvm::IRBuilder<> builder(context);
  auto* type = llvm::FunctionType::get(builder.getVoidTy(), {pointer}, false);
  auto* wrapper = llvm::Function::Create(type, llvm::GlobalValue::ExternalLinkage, name + "_packed", module);
  builder.SetInsertPoint(llvm::BasicBlock::Create(context, "entry", wrapper));
  llvm::SmallVector<llvm::Value*> args;
  for (llvm::Argument& arg : kernel->args()) {
    llvm::Value* slot = builder.CreateConstGEP1_64(pointer, wrapper->getArg(0), arg.getArgNo());
    args.push_back(builder.CreateLoad(arg.getType(), builder.CreateLoad(pointer, slot)));
  }
  builder.CreateCall(kernel, args);
  builder.CreateRetVoid();
}

}  // namespace

struct MlirJit::Impl {
  std::string dumpAsmDir;
  mlir::MLIRContext context{mlir::MLIRContext::Threading::DISABLED};
  std::unique_ptr<llvm::TargetMachine> optimizer;  ///< the JIT's target: O3 pipeline and asm dumps
  std::unique_ptr<llvm::TargetMachine> hostObjectMachine;  ///< position-independent, for host objects
  std::vector<std::unique_ptr<llvm::orc::LLJIT>> jits;  ///< one per compiled batch, owning its code
  std::string diagnostics;  ///< what the diagnostic handler collected since the last clear
  std::unique_ptr<mlir::ScopedDiagnosticHandler> handler;

  explicit Impl(std::string asmDir) : dumpAsmDir(std::move(asmDir)) {
    initializeNativeTarget();
    mlir::DialectRegistry registry;
    registry.insert<mlir::affine::AffineDialect, mlir::arith::ArithDialect, mlir::cf::ControlFlowDialect,
                    mlir::func::FuncDialect, mlir::LLVM::LLVMDialect, mlir::math::MathDialect,
                    mlir::memref::MemRefDialect, mlir::scf::SCFDialect>();
    mlir::registerBuiltinDialectTranslation(registry);
    mlir::registerLLVMDialectTranslation(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    handler = std::make_unique<mlir::ScopedDiagnosticHandler>(&context, [this](mlir::Diagnostic& d) {
      llvm::raw_string_ostream os(diagnostics);
      os << d.getLocation() << ": " << d << "\n";
      for (const mlir::Diagnostic& note : d.getNotes()) os << "  note: " << note << "\n";
      return mlir::success();
    });
    optimizer = hostMachine();
  }

  /// Throws weft::Error with `what` and the collected diagnostics.
  [[noreturn]] void fail(const std::string& what) {
    std::string message = what + (diagnostics.empty() ? "" : ":\n" + diagnostics);
    diagnostics.clear();
    throw Error(message);
  }

  /// One verified module holding every requested kernel; `texts` receives each kernel's MLIR.
  mlir::OwningOpRef<mlir::ModuleOp> generate(const std::vector<KernelRequest>& requests,
                                             std::vector<std::string>& texts) {
    diagnostics.clear();
    mlir::Location loc = mlir::UnknownLoc::get(&context);
    mlir::OwningOpRef<mlir::ModuleOp> batch = mlir::ModuleOp::create(loc);
    for (const KernelRequest& request : requests) {
      mlir::OwningOpRef<mlir::ModuleOp> single = mlir::ModuleOp::create(loc);
      codegen::emitKernel(*single, *request.body, request.plan, request.name);
      std::string text;
      llvm::raw_string_ostream os(text);
      single->print(os);
      if (mlir::failed(mlir::verify(*single)))
        fail("the MLIR generated for kernel " + request.name + " (body @" + request.body->name() +
             ") does not verify\n" + text);
      texts.push_back(std::move(text));
      batch->getBody()->getOperations().splice(batch->getBody()->end(), single->getBody()->getOperations());
    }
    return batch;
  }

  /// Lowers `module` to the LLVM dialect in place.
  void lower(mlir::ModuleOp module) {
    mlir::PassManager cleanup(&context);
    cleanup.addPass(mlir::createCanonicalizerPass());
    cleanup.addPass(mlir::createCSEPass());
    if (mlir::failed(cleanup.run(module))) fail("canonicalizing the generated kernels failed");
    mlir::RewritePatternSet approximations(&context);
    approximations.add<RationalErf, RangeReducedExp>(&context);
    mlir::populateMathPolynomialApproximationPatterns(approximations);
    if (mlir::failed(mlir::applyPatternsAndFoldGreedily(module, std::move(approximations))))
      fail("replacing math ops by polynomial approximations did not converge");
    mlir::PassManager passes(&context);
    passes.addPass(mlir::createLowerAffinePass());
    passes.addPass(mlir::createConvertSCFToCFPass());
    passes.addPass(mlir::createConvertMathToLLVMPass());
    passes.addPass(mlir::createConvertMathToLibmPass());
    passes.addPass(mlir::createArithToLLVMConversionPass());
    passes.addPass(mlir::createFinalizeMemRefToLLVMConversionPass());
    mlir::ConvertFuncToLLVMPassOptions funcOptions;
    funcOptions.useBarePtrCallConv = true;
    passes.addPass(mlir::createConvertFuncToLLVMPass(funcOptions));
    passes.addPass(mlir::createConvertControlFlowToLLVMPass());
    passes.addPass(mlir::createReconcileUnrealizedCastsPass());
    if (mlir::failed(passes.run(module))) fail("lowering the generated kernels to LLVM failed");
  }

  /// `requests` generated, lowered, translated to LLVM IR in `llvmContext` and optimized for
  /// `machine`; with `packed`, each kernel also gets its packed wrapper.
  std::unique_ptr<llvm::Module> optimizedModule(const std::vector<KernelRequest>& requests,
                                                std::vector<std::string>& texts, llvm::LLVMContext& llvmContext,
                                                llvm::TargetMachine& machine, bool packed) {
    mlir::OwningOpRef<mlir::ModuleOp> module = generate(requests, texts);
    lower(*module);
    std::unique_ptr<llvm::Module> llvmModule = mlir::translateModuleToLLVMIR(*module, llvmContext, "weft_kernels");
    if (!llvmModule) fail("translating the generated kernels to LLVM IR failed");
    llvmModule->setDataLayout(machine.createDataLayout());
    llvmModule->setTargetTriple(machine.getTargetTriple().str());
    if (packed)
      for (const KernelRequest& request : requests) addPackedWrapper(*llvmModule, request.name);
    optimize(*llvmModule, machine);
    return llvmModule;
  }

  /// Links `object` into a new LLJIT (kept in `jits`) and looks up NAME_packed for every
  /// name; nullopt with `problem` set when it does not parse, link or define them all (the
  /// JIT is then dropped). `quiet` keeps ORC from reporting link errors on stderr.
  std::optional<std::vector<PackedEntry>> link(const std::string& object, const std::vector<std::string>& names,
                                               bool quiet, std::string& problem) {
    std::unique_ptr<llvm::MemoryBuffer> buffer = llvm::MemoryBuffer::getMemBufferCopy(object, "weft_kernels.o");
    auto parsed = llvm::object::ObjectFile::createObjectFile(buffer->getMemBufferRef());
    if (!parsed) {
      problem = "not an object file: " + llvm::toString(parsed.takeError());
      return std::nullopt;
    }
    auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(hostMachineBuilder()).create();
    if (!jit) {
      problem = "creating the JIT failed: " + llvm::toString(jit.takeError());
      return std::nullopt;
    }
    if (quiet) (*jit)->getExecutionSession().setErrorReporter([](llvm::Error error) { llvm::consumeError(std::move(error)); });
    if (llvm::Error error = (*jit)->addObjectFile(std::move(buffer))) {
      problem = llvm::toString(std::move(error));
      return std::nullopt;
    }
    std::vector<PackedEntry> entries;
    for (const std::string& name : names) {
      auto address = (*jit)->lookup(name + "_packed");
      if (!address) {
        problem = "no kernel " + name + ": " + llvm::toString(address.takeError());
        return std::nullopt;
      }
      entries.push_back(address->toPtr<PackedEntry>());
    }
    jits.push_back(std::move(*jit));
    return entries;
  }

  /// Writes the assembly of `module`, the kernels `names`, to one DIR/NAME.s per kernel.
  void writeAssembly(llvm::Module& module, const std::vector<std::string>& names) {
    std::unique_ptr<llvm::Module> copy = llvm::CloneModule(module);  // code generation changes the IR
    std::string text = emitMachineCode(*copy, *optimizer, llvm::CodeGenFileType::AssemblyFile);
    std::filesystem::create_directories(dumpAsmDir);
    for (const auto& [name, part] : weft::cpu::codegen::splitAssemblyByKernel(text, names))
      std::ofstream(std::filesystem::path(dumpAsmDir) / (name + ".s")) << part;
  }
};

MlirJit::MlirJit(std::string dumpAsmDir) : impl_(std::make_unique<Impl>(std::move(dumpAsmDir))) {}

MlirJit::~MlirJit() = default;

CompiledBatch MlirJit::compile(const std::vector<KernelRequest>& requests) {
  CompiledBatch batch;
  if (requests.empty()) return batch;
  Impl& impl = *impl_;
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> module =
      impl.optimizedModule(requests, batch.mlirTexts, llvmContext, *impl.optimizer, true);
  std::vector<std::string> names;
  for (const KernelRequest& request : requests) names.push_back(request.name);
  if (!impl.dumpAsmDir.empty()) impl.writeAssembly(*module, names);
  batch.object = emitMachineCode(*module, *impl.optimizer, llvm::CodeGenFileType::ObjectFile);
  std::string problem;
  std::optional<std::vector<PackedEntry>> entries = impl.link(batch.object, names, false, problem);
  if (!entries) impl.fail("JIT compilation of the generated kernels failed: " + problem);
  batch.entries = std::move(*entries);
  return batch;
}

std::optional<std::vector<PackedEntry>> MlirJit::load(const std::string& object, const std::vector<std::string>& names) {
  std::string problem;
  return impl_->link(object, names, true, problem);
}

std::string MlirJit::emitObject(const std::vector<KernelRequest>& requests) {
  Impl& impl = *impl_;
  if (!impl.hostObjectMachine) impl.hostObjectMachine = objectMachine({});
  std::vector<std::string> texts;
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> module =
      impl.optimizedModule(requests, texts, llvmContext, *impl.hostObjectMachine, false);
  return emitMachineCode(*module, *impl.hostObjectMachine, llvm::CodeGenFileType::ObjectFile);
}

std::string MlirJit::emitBundle(const BundleRequest& bundle, const ObjectTarget& target) {
  checkIdentifier(bundle.symbols.name);
  if (bundle.symbols.program.find('\0') != std::string::npos)
    throw Error("bundle " + bundle.symbols.name + ": the program text holds a NUL character");
  Impl& impl = *impl_;
  std::unique_ptr<llvm::TargetMachine> targetMachine;
  llvm::TargetMachine* machine;
  if (target.triple.empty() && target.cpu.empty()) {
    if (!impl.hostObjectMachine) impl.hostObjectMachine = objectMachine({});
    machine = impl.hostObjectMachine.get();
  } else {
    targetMachine = objectMachine(target);
    machine = targetMachine.get();
  }
  std::vector<std::string> texts;
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> module = impl.optimizedModule(bundle.kernels, texts, llvmContext, *machine, true);
  module->setSourceFileName(bundle.symbols.name);
  internalize(*module);
  addBundleDescriptor(*module, bundle, *machine);
  return emitMachineCode(*module, *machine, llvm::CodeGenFileType::ObjectFile);
}

const std::string& jitTargetIdentity() {
  static const std::string identity = [] {
    std::vector<std::string> features = hostFeatureSet().getFeatures();
    std::sort(features.begin(), features.end());
    std::string text = "llvm " LLVM_VERSION_STRING "\ntriple " + llvmHostTriple() + "\ncpu " + llvmHostCpu() +
                       "\nfeatures";
    for (const std::string& feature : features) text += " " + feature;
    return text + "\n";
  }();
  return identity;
}

std::string hash128Hex(std::string_view data) {
  llvm::XXH128_hash_t hash =
      llvm::xxh3_128bits(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  return text;
}

uint64_t hash64(std::string_view data) {
  return llvm::xxh3_64bits(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

std::string llvmHostTriple() { return llvm::sys::getProcessTriple(); }

std::string llvmHostCpu() { return llvm::sys::getHostCPUName().str(); }

}  // namespace weft::cpu
