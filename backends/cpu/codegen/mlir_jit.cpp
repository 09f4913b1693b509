// Lowering and compilation of generated kernels. Algorithm:
//  1. Each kernel is emitted into a module of its own (whose text is the kernel's dump),
//     verified, then moved into the batch's one module.
//  2. The module is canonicalized (CSE of the index arithmetic), f32 math ops are replaced by
//     the math dialect's polynomial approximations (greedy rewrite), then lowered to the LLVM
//     dialect: affine -> arith, scf -> cf, math -> LLVM intrinsics (and libm calls for what is
//     left: f64 tanh/erf), arith, memref, func (bare-pointer calling convention: a memref
//     argument is one pointer) and cf -> LLVM.
//  3. The LLVM module gets a packed wrapper `NAME_packed(void** args)` per kernel (args[i]
//     points to argument i) and is optimized at O3 by a target machine for the host CPU name
//     and features, so that the loop vectorizer uses the host's vector width. It is then
//     JIT-compiled by an ORC LLJIT kept alive by MlirJit, or emitted as an object file.
//     (MLIR's ExecutionEngine is not used: its destructor JIT-compiles deinitialization code,
//     which crashes when a compiler held in a static is destroyed at exit.)
// Every MLIR diagnostic is captured and becomes a weft::Error.
#include "backends/cpu/codegen/mlir_jit.h"

#include <filesystem>
#include <fstream>
#include <mutex>

#include "backends/cpu/codegen/mlir_emitter.h"
#include "ir/error.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
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
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/ExecutionEngine/OptUtils.h"
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

/// A target machine builder for this CPU: its triple, CPU name and every feature it has.
llvm::orc::JITTargetMachineBuilder hostMachineBuilder(bool positionIndependent) {
  llvm::orc::JITTargetMachineBuilder builder{llvm::Triple(llvm::sys::getProcessTriple())};
  builder.setCPU(llvm::sys::getHostCPUName().str());
  for (const auto& feature : llvm::sys::getHostCPUFeatures())
    builder.getFeatures().AddFeature(feature.first(), feature.second);
  builder.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  if (positionIndependent) {  // for objects linked into programs or shared libraries
    builder.setRelocationModel(llvm::Reloc::PIC_);
    builder.setCodeModel(llvm::CodeModel::Small);
  }
  return builder;
}

std::unique_ptr<llvm::TargetMachine> hostMachine(bool positionIndependent) {
  auto machine = hostMachineBuilder(positionIndependent).createTargetMachine();
  if (!machine) throw Error("cannot create a target machine for the host CPU: " + llvm::toString(machine.takeError()));
  return std::move(*machine);
}

/// Machine code (assembly or object) of `module` for `machine`.
std::string emitMachineCode(llvm::Module& module, llvm::TargetMachine& machine, llvm::CodeGenFileType type) {
  llvm::SmallString<0> buffer;
  llvm::raw_svector_ostream stream(buffer);
  llvm::legacy::PassManager passes;
  if (machine.addPassesToEmitFile(passes, stream, nullptr, type))
    throw Error(std::string("the host target machine cannot emit ") +
                (type == llvm::CodeGenFileType::AssemblyFile ? "assembly" : "objects"));
  passes.run(module);
  return std::string(buffer.str());
}

/// Optimizes `module` at O3 for `machine`; returns an error message or "".
std::string optimize(llvm::Module& module, llvm::TargetMachine& machine) {
  if (llvm::Error error = mlir::makeOptimizingTransformer(3, 0, &machine)(&module))
    return llvm::toString(std::move(error));
  return "";
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
  std::unique_ptr<llvm::TargetMachine> objectMachine;  ///< position-independent, for emitObject
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
    optimizer = hostMachine(false);
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
    std::string problem = optimize(*llvmModule, machine);
    if (!problem.empty()) fail("optimizing the generated kernels failed: " + problem);
    return llvmModule;
  }

  void writeAssembly(llvm::Module& module, const std::string& name) {
    std::unique_ptr<llvm::Module> copy = llvm::CloneModule(module);  // code generation changes the IR
    std::string text = emitMachineCode(*copy, *optimizer, llvm::CodeGenFileType::AssemblyFile);
    std::filesystem::create_directories(dumpAsmDir);
    std::ofstream(std::filesystem::path(dumpAsmDir) / (name + ".s")) << text;
  }
};

MlirJit::MlirJit(std::string dumpAsmDir) : impl_(std::make_unique<Impl>(std::move(dumpAsmDir))) {}

MlirJit::~MlirJit() = default;

CompiledBatch MlirJit::compile(const std::vector<KernelRequest>& requests) {
  CompiledBatch batch;
  if (requests.empty()) return batch;
  Impl& impl = *impl_;
  auto llvmContext = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> module =
      impl.optimizedModule(requests, batch.mlirTexts, *llvmContext, *impl.optimizer, true);
  if (!impl.dumpAsmDir.empty()) impl.writeAssembly(*module, requests.front().name);
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(hostMachineBuilder(false)).create();
  if (!jit) impl.fail("creating the JIT failed: " + llvm::toString(jit.takeError()));
  if (llvm::Error error = (*jit)->addIRModule(llvm::orc::ThreadSafeModule(std::move(module), std::move(llvmContext))))
    impl.fail("JIT compilation of the generated kernels failed: " + llvm::toString(std::move(error)));
  for (const KernelRequest& request : requests) {
    auto address = (*jit)->lookup(request.name + "_packed");
    if (!address) impl.fail("the JIT has no kernel " + request.name + ": " + llvm::toString(address.takeError()));
    batch.entries.push_back(address->toPtr<void (*)(void**)>());
  }
  impl.jits.push_back(std::move(*jit));
  return batch;
}

std::string MlirJit::emitObject(const std::vector<KernelRequest>& requests) {
  Impl& impl = *impl_;
  if (!impl.objectMachine) impl.objectMachine = hostMachine(true);
  std::vector<std::string> texts;
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> module = impl.optimizedModule(requests, texts, llvmContext, *impl.objectMachine, false);
  return emitMachineCode(*module, *impl.objectMachine, llvm::CodeGenFileType::ObjectFile);
}

}  // namespace weft::cpu
