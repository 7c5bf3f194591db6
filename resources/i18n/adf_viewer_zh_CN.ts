<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>About</name>
    <message>
        <source>&lt;b&gt;Research demonstration — not a medical device.&lt;/b&gt; The bundled model was trained on public endoscopy data (colon polyps and laryngeal frames) with &lt;i&gt;synthetic&lt;/i&gt; NBI generated from white light. It has not been validated for clinical use and must not be used for diagnosis or treatment decisions. Every mask must be reviewed by a qualified clinician.</source>
        <translation>&lt;b&gt;科研演示软件——不是医疗器械。&lt;/b&gt;内置模型使用公开的内镜数据（结肠息肉和喉部图像）训练，其中的窄带成像 (NBI) 图像是由白光 (WLI) 图像&lt;i&gt;合成&lt;/i&gt;的。本软件未经临床验证，不得用于诊断或治疗决策。每一个掩膜都必须由具备资质的临床医生审核。</translation>
    </message>
    <message>
        <source>Demo cases and training data (CC BY 4.0):&lt;br&gt;• Kvasir-SEG — D. Jha et al., MMM 2020; HyperKvasir — H. Borgli et al., Scientific Data 7:283, 2020.&lt;br&gt;• Laryngeal endoscopic images — M.-H. Laves, J. Bicker, L. A. Kahrs, T. Ortmaier, IJCARS 14(3):483–492, 2019.&lt;br&gt;Method after the Align-Disentangle-Fusion paper (arXiv 2508.16882).</source>
        <translation>演示病例与训练数据（CC BY 4.0）：&lt;br&gt;• Kvasir-SEG — D. Jha 等，MMM 2020；HyperKvasir — H. Borgli 等，Scientific Data 7:283, 2020。&lt;br&gt;• 喉内镜图像 — M.-H. Laves, J. Bicker, L. A. Kahrs, T. Ortmaier, IJCARS 14(3):483–492, 2019。&lt;br&gt;方法参考 Align-Disentangle-Fusion 论文（arXiv 2508.16882）。</translation>
    </message>
    <message>
        <source>&lt;p&gt;Active model: &lt;b&gt;{model}&lt;/b&gt; ({preset})&lt;/p&gt;</source>
        <translation>&lt;p&gt;当前模型：&lt;b&gt;{model}&lt;/b&gt;（{preset}）&lt;/p&gt;</translation>
    </message>
    <message>
        <source>&lt;p&gt;Paired WLI | NBI endoscopy viewer with a local Align-Disentangle-Fusion tumour segmentation model. Everything runs on this computer; no image or mask ever leaves it.&lt;/p&gt;</source>
        <translation>&lt;p&gt;白光 (WLI) | 窄带成像 (NBI) 配对内镜图像查看器，内置本地运行的 Align-Disentangle-Fusion 肿瘤分割模型。所有计算都在本机完成，图像和掩膜不会离开这台计算机。&lt;/p&gt;</translation>
    </message>
</context>
<context>
    <name>Actions</name>
    <message>
        <source>Navigate (left-drag pans)</source>
        <translation>浏览（左键拖动平移）</translation>
    </message>
    <message>
        <source>Push / pull the boundary</source>
        <translation>推拉边界</translation>
    </message>
    <message>
        <source>Click to correct: left click = tumour, right or Shift+click = not tumour; the model redraws the mask (Ctrl+Z removes the last click)</source>
        <translation>点击修正：左键 = 肿瘤，右键或 Shift+单击 = 非肿瘤；模型会重新绘制掩膜（Ctrl+Z 撤销最后一次点击）</translation>
    </message>
    <message>
        <source>Smooth boundary</source>
        <translation>平滑边界</translation>
    </message>
    <message>
        <source>Grow 2 px</source>
        <translation>扩张 2 像素</translation>
    </message>
    <message>
        <source>Shrink 2 px</source>
        <translation>收缩 2 像素</translation>
    </message>
    <message>
        <source>Fill holes</source>
        <translation>填充孔洞</translation>
    </message>
    <message>
        <source>Remove islands &lt; 50 px</source>
        <translation>去除小于 50 像素的孤岛</translation>
    </message>
    <message>
        <source>Refine (GrabCut)</source>
        <translation>精修 (GrabCut)</translation>
    </message>
    <message>
        <source>Side by side</source>
        <translation>并排</translation>
    </message>
    <message>
        <source>WLI only</source>
        <translation>仅 WLI</translation>
    </message>
    <message>
        <source>NBI only</source>
        <translation>仅 NBI</translation>
    </message>
    <message>
        <source>Swapped (NBI | WLI)</source>
        <translation>交换 (NBI | WLI)</translation>
    </message>
    <message>
        <source>New workspace…</source>
        <translation>新建工作区…</translation>
    </message>
    <message>
        <source>Open workspace…</source>
        <translation>打开工作区…</translation>
    </message>
    <message>
        <source>Import pairs…</source>
        <translation>导入图像对…</translation>
    </message>
    <message>
        <source>Import video…</source>
        <translation>导入视频…</translation>
    </message>
    <message>
        <source>Import endoscopy videos (WLI/NBI frames found, paired and registered)</source>
        <translation>导入内镜视频（自动识别白光/NBI 帧、配对并配准）</translation>
    </message>
    <message>
        <source>Export dataset…</source>
        <translation>导出数据集…</translation>
    </message>
    <message>
        <source>Save now</source>
        <translation>立即保存</translation>
    </message>
    <message>
        <source>Save now (autosave runs 2 s after the last edit)</source>
        <translation>立即保存（最后一次编辑 2 秒后自动保存）</translation>
    </message>
    <message>
        <source>Quit</source>
        <translation>退出</translation>
    </message>
    <message>
        <source>Undo</source>
        <translation>撤销</translation>
    </message>
    <message>
        <source>Undo stroke</source>
        <translation>撤销一笔</translation>
    </message>
    <message>
        <source>Redo</source>
        <translation>重做</translation>
    </message>
    <message>
        <source>Larger brush</source>
        <translation>增大画笔</translation>
    </message>
    <message>
        <source>Smaller brush</source>
        <translation>减小画笔</translation>
    </message>
    <message>
        <source>Settings…</source>
        <translation>设置…</translation>
    </message>
    <message>
        <source>Fit</source>
        <translation>适应窗口</translation>
    </message>
    <message>
        <source>Fit the images to the view</source>
        <translation>图像适应视图大小</translation>
    </message>
    <message>
        <source>Actual pixels (1:1)</source>
        <translation>实际像素 (1:1)</translation>
    </message>
    <message>
        <source>Zoom in</source>
        <translation>放大</translation>
    </message>
    <message>
        <source>Zoom out</source>
        <translation>缩小</translation>
    </message>
    <message>
        <source>Toggle overlay</source>
        <translation>显示/隐藏叠加层</translation>
    </message>
    <message>
        <source>Overlay on / off</source>
        <translation>叠加层开/关</translation>
    </message>
    <message>
        <source>Next overlay mode</source>
        <translation>下一种叠加方式</translation>
    </message>
    <message>
        <source>Overlay mode: outline, filled, heat map</source>
        <translation>叠加方式：轮廓、填充、热图</translation>
    </message>
    <message>
        <source>Next case</source>
        <translation>下一个病例</translation>
    </message>
    <message>
        <source>Previous case</source>
        <translation>上一个病例</translation>
    </message>
    <message>
        <source>Accept and next</source>
        <translation>确认并转到下一个</translation>
    </message>
    <message>
        <source>Accept the mask on screen and go to the next case to review</source>
        <translation>确认屏幕上的掩膜，并转到下一个待审核病例</translation>
    </message>
    <message>
        <source>Approve as tumour-free</source>
        <translation>确认为无肿瘤</translation>
    </message>
    <message>
        <source>Approve the case as showing no tumour (saves an empty mask) and go to the next case</source>
        <translation>确认该病例无肿瘤（保存空掩膜），并转到下一个病例</translation>
    </message>
    <message>
        <source>Exclude…</source>
        <translation>排除…</translation>
    </message>
    <message>
        <source>Exclude the case with a reason</source>
        <translation>排除该病例并注明原因</translation>
    </message>
    <message>
        <source>Predict again</source>
        <translation>重新预测</translation>
    </message>
    <message>
        <source>Pre-annotate all…</source>
        <translation>全部预标注…</translation>
    </message>
    <message>
        <source>Agreement summary…</source>
        <translation>一致性汇总…</translation>
    </message>
    <message>
        <source>Train a new version…</source>
        <translation>训练新版本…</translation>
    </message>
    <message>
        <source>Model versions…</source>
        <translation>模型版本…</translation>
    </message>
    <message>
        <source>Keyboard shortcuts</source>
        <translation>键盘快捷键</translation>
    </message>
    <message>
        <source>This list of keyboard shortcuts</source>
        <translation>本快捷键列表</translation>
    </message>
    <message>
        <source>About ADF Viewer</source>
        <translation>关于 ADF Viewer</translation>
    </message>
    <message>
        <source>Wheel</source>
        <translation>滚轮</translation>
    </message>
    <message>
        <source>Zoom at the cursor</source>
        <translation>以光标为中心缩放</translation>
    </message>
    <message>
        <source>Middle / right drag</source>
        <translation>中键/右键拖动</translation>
    </message>
    <message>
        <source>Pan (with the click tool a right click marks &quot;not tumour&quot;: middle drag pans)</source>
        <translation>平移（使用点击工具时右键标记“非肿瘤”，请用中键拖动平移）</translation>
    </message>
    <message>
        <source>Brush size</source>
        <translation>画笔大小</translation>
    </message>
    <message>
        <source>While drawing a polygon: close it / cancel it / remove the last point</source>
        <translation>绘制多边形时：闭合 / 取消 / 删除最后一个点</translation>
    </message>
    <message>
        <source>Mouse, and keys while drawing</source>
        <translation>鼠标及绘制时的按键</translation>
    </message>
    <message>
        <source>Navigate</source>
        <translation>浏览</translation>
    </message>
    <message>
        <source>Brush</source>
        <translation>画笔</translation>
    </message>
    <message>
        <source>Eraser</source>
        <translation>橡皮擦</translation>
    </message>
    <message>
        <source>Polygon fill</source>
        <translation>多边形填充</translation>
    </message>
    <message>
        <source>Polygon erase</source>
        <translation>多边形擦除</translation>
    </message>
    <message>
        <source>Lasso fill</source>
        <translation>套索填充</translation>
    </message>
    <message>
        <source>Lasso erase</source>
        <translation>套索擦除</translation>
    </message>
    <message>
        <source>Push / pull</source>
        <translation>推拉</translation>
    </message>
    <message>
        <source>Click to correct</source>
        <translation>点击修正</translation>
    </message>
</context>
<context>
    <name>AgreementDialog</name>
    <message>
        <source>Model vs clinician agreement</source>
        <translation>模型与医生的一致性</translation>
    </message>
    <message>
        <source>{n} corrected cases compared with the model&apos;s prediction. Mean Dice {mean}; worst {worst}.</source>
        <translation>已将 {n} 个修订过的病例与模型预测比较。平均 Dice {mean}；最差 {worst}。</translation>
    </message>
    <message>
        <source>No case has both a model prediction and a clinician&apos;s revision yet.</source>
        <translation>目前还没有同时具有模型预测和医生修订的病例。</translation>
    </message>
    <message>
        <source>Case</source>
        <translation>病例</translation>
    </message>
    <message>
        <source>Patient</source>
        <translation>患者</translation>
    </message>
    <message>
        <source>Dice</source>
        <translation>Dice</translation>
    </message>
    <message>
        <source>Worst cases (double-click to open):</source>
        <translation>最差病例（双击打开）：</translation>
    </message>
</context>
<context>
    <name>App</name>
    <message>
        <source>Preparing the demo workspace (first start)…</source>
        <translation>正在准备演示工作区（首次启动）…</translation>
    </message>
    <message>
        <source>Cannot prepare the demo workspace</source>
        <translation>无法准备演示工作区</translation>
    </message>
</context>
<context>
    <name>Device</name>
    <message>
        <source>CUDA requested but not available</source>
        <translation>已指定 CUDA 但不可用</translation>
    </message>
    <message>
        <source>CUDA failed at run time</source>
        <translation>CUDA 运行时出错</translation>
    </message>
    <message>
        <source>torch was built without CUDA</source>
        <translation>torch 未包含 CUDA 支持</translation>
    </message>
    <message>
        <source>no CUDA device found</source>
        <translation>未找到 CUDA 设备</translation>
    </message>
    <message>
        <source>CUDA probe returned a wrong result</source>
        <translation>CUDA 检测返回了错误结果</translation>
    </message>
    <message>
        <source>CUDA probe failed</source>
        <translation>CUDA 检测失败</translation>
    </message>
    <message>
        <source>requested</source>
        <translation>用户指定</translation>
    </message>
</context>
<context>
    <name>Dialogs</name>
    <message>
        <source>{n} case(s) have edits that were not saved when {app} last closed: {names}.

Restore them as new revisions?</source>
        <translation>{app} 上次关闭时，有 {n} 个病例的编辑尚未保存：{names}。

要将它们恢复为新的修订版本吗？</translation>
    </message>
    <message>
        <source>Unsaved edits found</source>
        <translation>发现未保存的编辑</translation>
    </message>
    <message>
        <source>Exclude case</source>
        <translation>排除病例</translation>
    </message>
    <message>
        <source>Why is this case excluded? (e.g. blurred, no lesion visible)</source>
        <translation>排除该病例的原因？（例如：图像模糊、未见病灶）</translation>
    </message>
    <message>
        <source>About {app}</source>
        <translation>关于 {app}</translation>
    </message>
    <message>
        <source>Choose an empty folder for the new workspace</source>
        <translation>为新工作区选择一个空文件夹</translation>
    </message>
    <message>
        <source>Cannot create workspace</source>
        <translation>无法创建工作区</translation>
    </message>
    <message>
        <source>Open a workspace folder</source>
        <translation>打开工作区文件夹</translation>
    </message>
</context>
<context>
    <name>Errors</name>
    <message>
        <source>is a directory</source>
        <translation>是一个文件夹</translation>
    </message>
    <message>
        <source>file not found</source>
        <translation>文件不存在</translation>
    </message>
    <message>
        <source>unreadable ({error})</source>
        <translation>无法读取（{error}）</translation>
    </message>
    <message>
        <source>empty file (0 bytes)</source>
        <translation>空文件（0 字节）</translation>
    </message>
    <message>
        <source>not an image (unknown format)</source>
        <translation>不是图像（未知格式）</translation>
    </message>
    <message>
        <source>damaged {format} header</source>
        <translation>{format} 文件头已损坏</translation>
    </message>
    <message>
        <source>truncated PNG (no IEND chunk)</source>
        <translation>PNG 文件不完整（缺少 IEND 块）</translation>
    </message>
    <message>
        <source>truncated JPEG (no end-of-image marker)</source>
        <translation>JPEG 文件不完整（缺少图像结束标记）</translation>
    </message>
    <message>
        <source>cannot decode {format} (corrupt or unsupported)</source>
        <translation>无法解码 {format}（已损坏或不受支持）</translation>
    </message>
    <message>
        <source>workspace {root} is read-only</source>
        <translation>工作区 {root} 是只读的</translation>
    </message>
    <message>
        <source>cannot write prediction cache: {error}</source>
        <translation>无法写入预测缓存：{error}</translation>
    </message>
    <message>
        <source>cannot write to workspace {root}: {error}</source>
        <translation>无法写入工作区 {root}：{error}</translation>
    </message>
    <message>
        <source>cannot write revision {path}: {error}</source>
        <translation>无法写入修订版本 {path}：{error}</translation>
    </message>
    <message>
        <source>mask file {path} was modified outside ADF Viewer (sha256 mismatch)</source>
        <translation>掩膜文件 {path} 已在 ADF Viewer 之外被修改（sha256 不一致）</translation>
    </message>
    <message>
        <source>{root} is a file, not a workspace folder</source>
        <translation>{root} 是一个文件，不是工作区文件夹</translation>
    </message>
    <message>
        <source>{root} cannot be shared safely: {problem}, so other machines do not see SQLite&apos;s locks and two of them could write at once and corrupt the workspace. Copy the workspace to a local disk, or ask IT to mount the share with locking (NFS without &apos;nolock&apos; or &apos;local_lock&apos;, SMB without &apos;nobrl&apos;).</source>
        <translation>{root} 无法安全共享：{problem}，其他计算机看不到 SQLite 的锁，两台计算机可能同时写入而损坏工作区。请将工作区复制到本地磁盘，或请 IT 部门以支持文件锁的方式挂载共享（NFS 不使用 “nolock” 或 “local_lock”，SMB 不使用 “nobrl”）。</translation>
    </message>
    <message>
        <source>{root} is not an ADF Viewer workspace (no {db})</source>
        <translation>{root} 不是 ADF Viewer 工作区（没有 {db}）</translation>
    </message>
    <message>
        <source>no workspace at {root}</source>
        <translation>{root} 处没有工作区</translation>
    </message>
    <message>
        <source>{root} is not empty and not an ADF Viewer workspace; choose an empty or new folder</source>
        <translation>{root} 不是空文件夹，也不是 ADF Viewer 工作区；请选择一个空文件夹或新文件夹</translation>
    </message>
    <message>
        <source>cannot create workspace at {root}: {error}</source>
        <translation>无法在 {root} 创建工作区：{error}</translation>
    </message>
    <message>
        <source>workspace {root} is read-only ({detail})</source>
        <translation>工作区 {root} 是只读的（{detail}）</translation>
    </message>
    <message>
        <source>workspace {root} is busy: another program has held its lock for more than {seconds} s ({detail}). {who}</source>
        <translation>工作区 {root} 正忙：另一个程序占用其锁已超过 {seconds} 秒（{detail}）。{who}</translation>
    </message>
    <message>
        <source>workspace {root} database is corrupt ({detail})</source>
        <translation>工作区 {root} 的数据库已损坏（{detail}）</translation>
    </message>
    <message>
        <source>cannot read weights ({error})</source>
        <translation>无法读取权重（{error}）</translation>
    </message>
    <message>
        <source>sha256 mismatch: file has {file}..., card says {card}... (corrupt or replaced)</source>
        <translation>sha256 不一致：文件为 {file}…，模型卡记录为 {card}…（已损坏或被替换）</translation>
    </message>
    <message>
        <source>not a valid safetensors file ({error})</source>
        <translation>不是有效的 safetensors 文件（{error}）</translation>
    </message>
    <message>
        <source>model card not found (expected the .json beside the .safetensors)</source>
        <translation>找不到模型卡（.safetensors 旁应有对应的 .json）</translation>
    </message>
    <message>
        <source>model card is not valid JSON ({error})</source>
        <translation>模型卡不是有效的 JSON（{error}）</translation>
    </message>
</context>
<context>
    <name>ExportDialog</name>
    <message>
        <source>Folder (PNG images + masks + manifest.csv)</source>
        <translation>文件夹（PNG 图像 + 掩膜 + manifest.csv）</translation>
    </message>
    <message>
        <source>COCO (annotations.json)</source>
        <translation>COCO (annotations.json)</translation>
    </message>
    <message>
        <source>nnU-Net v2 raw dataset</source>
        <translation>nnU-Net v2 原始数据集</translation>
    </message>
    <message>
        <source>labelme (one JSON per image)</source>
        <translation>labelme（每张图像一个 JSON）</translation>
    </message>
    <message>
        <source>Export corrected dataset</source>
        <translation>导出修订后的数据集</translation>
    </message>
    <message>
        <source>Keep case and patient ids (off: stable pseudonyms)</source>
        <translation>保留病例和患者编号（关闭时使用固定的化名）</translation>
    </message>
    <message>
        <source>An empty folder (or a previous export)</source>
        <translation>一个空文件夹（或以前的导出文件夹）</translation>
    </message>
    <message>
        <source>Choose…</source>
        <translation>选择…</translation>
    </message>
    <message>
        <source>Format</source>
        <translation>格式</translation>
    </message>
    <message>
        <source>Cases with status</source>
        <translation>导出以下状态的病例</translation>
    </message>
    <message>
        <source>Validation share (split by patient)</source>
        <translation>验证集比例（按患者划分）</translation>
    </message>
    <message>
        <source>Split seed</source>
        <translation>划分随机种子</translation>
    </message>
    <message>
        <source>Output folder</source>
        <translation>输出文件夹</translation>
    </message>
    <message>
        <source>Images are re-encoded without metadata; nothing is written outside the output folder.</source>
        <translation>图像会重新编码并去除元数据；不会在输出文件夹之外写入任何内容。</translation>
    </message>
    <message>
        <source>Export</source>
        <translation>导出</translation>
    </message>
    <message>
        <source>Cancel export</source>
        <translation>取消导出</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Export into folder</source>
        <translation>导出到文件夹</translation>
    </message>
    <message>
        <source>Choose an output folder first.</source>
        <translation>请先选择输出文件夹。</translation>
    </message>
    <message>
        <source>Exporting…</source>
        <translation>正在导出…</translation>
    </message>
    <message>
        <source>Export not written: {error}</source>
        <translation>未导出：{error}</translation>
    </message>
    <message>
        <source>Exported {n} cases ({train} train, {val} validation) as {fmt} to {out}.</source>
        <translation>已将 {n} 个病例（训练 {train} 个，验证 {val} 个）以 {fmt} 格式导出到 {out}。</translation>
    </message>
</context>
<context>
    <name>History</name>
    <message>
        <source>model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>human</source>
        <translation>医生</translation>
    </message>
    <message>
        <source>import</source>
        <translation>导入</translation>
    </message>
</context>
<context>
    <name>HistoryPanel</name>
    <message>
        <source>Rev</source>
        <translation>版本</translation>
    </message>
    <message>
        <source>Source</source>
        <translation>来源</translation>
    </message>
    <message>
        <source>Who</source>
        <translation>修订者</translation>
    </message>
    <message>
        <source>When</source>
        <translation>时间</translation>
    </message>
    <message>
        <source>Area px</source>
        <translation>面积（像素）</translation>
    </message>
    <message>
        <source>Dice vs model</source>
        <translation>与模型的 Dice</translation>
    </message>
    <message>
        <source>Restore selected as new revision</source>
        <translation>将所选版本恢复为新修订</translation>
    </message>
</context>
<context>
    <name>ImportDialog</name>
    <message>
        <source>Import WLI/NBI pairs</source>
        <translation>导入白光/NBI 图像对</translation>
    </message>
    <message>
        <source>Import a folder (X_wli + X_nbi, WLI/ + NBI/, X_1 + X_2 [+ X_1_label]) or a CSV (wli_path, nbi_path[, label_path][, patient_id]). Files are copied into the workspace.</source>
        <translation>导入一个文件夹（X_wli + X_nbi、WLI/ + NBI/、X_1 + X_2 [+ X_1_label]）或 CSV 文件（wli_path, nbi_path[, label_path][, patient_id]）。文件会被复制到工作区中。</translation>
    </message>
    <message>
        <source>Import folder…</source>
        <translation>导入文件夹…</translation>
    </message>
    <message>
        <source>Import CSV…</source>
        <translation>导入 CSV…</translation>
    </message>
    <message>
        <source>Folder with WLI/NBI pairs</source>
        <translation>包含白光/NBI 图像对的文件夹</translation>
    </message>
    <message>
        <source>CSV of pairs</source>
        <translation>图像对 CSV 文件</translation>
    </message>
    <message>
        <source>CSV files (*.csv)</source>
        <translation>CSV 文件 (*.csv)</translation>
    </message>
    <message>
        <source>Importing…</source>
        <translation>正在导入…</translation>
    </message>
    <message>
        <source>Import failed: {error}</source>
        <translation>导入失败：{error}</translation>
    </message>
    <message>
        <source>Imported {n} case(s); the workspace now holds {total}.</source>
        <translation>已导入 {n} 个病例；工作区现有 {total} 个病例。</translation>
    </message>
    <message>
        <source>Skipped {n} file(s):</source>
        <translation>跳过了 {n} 个文件：</translation>
    </message>
</context>
<context>
    <name>Inference</name>
    <message>
        <source>Cannot open the workspace for predictions: {error}</source>
        <translation>无法打开工作区进行预测：{error}</translation>
    </message>
    <message>
        <source>No model is active in this workspace (Model ▸ Model versions ▸ Add model file…).</source>
        <translation>此工作区没有启用的模型（模型 ▸ 模型版本 ▸ 添加模型文件…）。</translation>
    </message>
    <message>
        <source>model {model} has no click mode (it was not trained with clicks)</source>
        <translation>模型 {model} 不支持点击模式（训练时未使用点击）</translation>
    </message>
    <message>
        <source>Prediction failed</source>
        <translation>预测失败</translation>
    </message>
</context>
<context>
    <name>Language</name>
    <message>
        <source>System default</source>
        <translation>跟随系统</translation>
    </message>
</context>
<context>
    <name>LossPlot</name>
    <message>
        <source>epoch →</source>
        <translation>训练轮次 →</translation>
    </message>
    <message>
        <source>loss</source>
        <translation>损失</translation>
    </message>
    <message>
        <source>val Dice</source>
        <translation>验证 Dice</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Worklist</source>
        <translation>工作列表</translation>
    </message>
    <message>
        <source>Tools and model</source>
        <translation>工具与模型</translation>
    </message>
    <message>
        <source>History</source>
        <translation>修订历史</translation>
    </message>
    <message>
        <source>Cannot open workspace</source>
        <translation>无法打开工作区</translation>
    </message>
    <message>
        <source> (read-only)</source>
        <translation>（只读）</translation>
    </message>
    <message>
        <source>{path} is read-only: you can look and predict, but nothing can be saved here.</source>
        <translation>{path} 是只读的：可以查看和预测，但无法在此保存任何内容。</translation>
    </message>
    <message>
        <source>Cannot show case {case}: {error}</source>
        <translation>无法显示病例 {case}：{error}</translation>
    </message>
    <message>
        <source>No NBI for this case — WLI-only prediction</source>
        <translation>该病例没有 NBI 图像——仅用白光 (WLI) 预测</translation>
    </message>
    <message>
        <source>NBI — SYNTHETIC (generated from WLI)</source>
        <translation>NBI——合成图像（由白光生成）</translation>
    </message>
    <message>
        <source>NBI (registered to WLI)</source>
        <translation>NBI（已配准到白光）</translation>
    </message>
    <message>
        <source> — registration quality low</source>
        <translation>——配准质量低</translation>
    </message>
    <message>
        <source>showing revision {rev}</source>
        <translation>显示修订版本 {rev}</translation>
    </message>
    <message>
        <source>showing model {model}</source>
        <translation>显示模型 {model} 的预测</translation>
    </message>
    <message>
        <source>no mask yet</source>
        <translation>尚无掩膜</translation>
    </message>
    <message>
        <source> · unsaved changes</source>
        <translation> · 有未保存的修改</translation>
    </message>
    <message>
        <source>Every case is reviewed.</source>
        <translation>所有病例均已审核。</translation>
    </message>
</context>
<context>
    <name>Menus</name>
    <message>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>Edit</source>
        <translation>编辑</translation>
    </message>
    <message>
        <source>&amp;Edit</source>
        <translation>编辑(&amp;E)</translation>
    </message>
    <message>
        <source>View</source>
        <translation>视图</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>Case</source>
        <translation>病例</translation>
    </message>
    <message>
        <source>&amp;Case</source>
        <translation>病例(&amp;C)</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>&amp;Model</source>
        <translation>模型(&amp;M)</translation>
    </message>
    <message>
        <source>Help</source>
        <translation>帮助</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
</context>
<context>
    <name>ModelsDialog</name>
    <message>
        <source>{own} (parent {base})</source>
        <translation>{own}（父版本 {base}）</translation>
    </message>
    <message>
        <source>no</source>
        <translation>无</translation>
    </message>
    <message>
        <source>own network</source>
        <translation>独立网络</translation>
    </message>
    <message>
        <source>yes</source>
        <translation>有</translation>
    </message>
    <message>
        <source>Model versions</source>
        <translation>模型版本</translation>
    </message>
    <message>
        <source>The active model predicts new cases. Activating another one re-predicts lazily; clinicians&apos; revisions are never changed.</source>
        <translation>当前启用的模型用于预测新病例。启用其他模型后会按需重新预测；医生的修订永远不会被改动。</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Parent</source>
        <translation>父版本</translation>
    </message>
    <message>
        <source>Held-out Dice</source>
        <translation>留出集 Dice</translation>
    </message>
    <message>
        <source>Created</source>
        <translation>创建时间</translation>
    </message>
    <message>
        <source>Training data</source>
        <translation>训练数据</translation>
    </message>
    <message>
        <source>Clicks</source>
        <translation>点击修正</translation>
    </message>
    <message>
        <source>Click to correct: whether the model redraws the mask from clicks, and whether its click mode has a network of its own (the automatic mask then stays exactly the release&apos;s)</source>
        <translation>点击修正：模型能否根据点击重新绘制掩膜，以及点击模式是否有独立的网络（此时自动掩膜与该版本发布时完全相同）</translation>
    </message>
    <message>
        <source>Activate selected</source>
        <translation>启用所选模型</translation>
    </message>
    <message>
        <source>Roll back to previous</source>
        <translation>回退到上一版本</translation>
    </message>
    <message>
        <source>Add model file…</source>
        <translation>添加模型文件…</translation>
    </message>
    <message>
        <source>Register a model card (.json) and its weights (.safetensors) in this workspace</source>
        <translation>在此工作区注册模型卡 (.json) 及其权重 (.safetensors)</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Add a model file</source>
        <translation>添加模型文件</translation>
    </message>
    <message>
        <source>ADF model (*.json *.safetensors);;All files (*)</source>
        <translation>ADF 模型 (*.json *.safetensors);;所有文件 (*)</translation>
    </message>
    <message>
        <source>Checking {file}…</source>
        <translation>正在检查 {file}…</translation>
    </message>
    <message>
        <source>Cannot add {file}: {reason}</source>
        <translation>无法添加 {file}：{reason}</translation>
    </message>
    <message>
        <source>{model} is registered and active.</source>
        <translation>{model} 已注册并启用。</translation>
    </message>
    <message>
        <source>{model} is registered. Select it and press Activate selected to predict with it.</source>
        <translation>{model} 已注册。选中它并点击“启用所选模型”即可用它进行预测。</translation>
    </message>
</context>
<context>
    <name>Predictions</name>
    <message>
        <source>No model is active in this workspace and the bundled model could not be added ({error}). Use Model ▸ Model versions ▸ Add model file…</source>
        <translation>此工作区没有启用的模型，且无法添加内置模型（{error}）。请使用 模型 ▸ 模型版本 ▸ 添加模型文件…</translation>
    </message>
    <message>
        <source>none</source>
        <translation>无</translation>
    </message>
    <message>
        <source>Model: {model}</source>
        <translation>模型：{model}</translation>
    </message>
    <message>
        <source>Active model: {model}</source>
        <translation>当前模型：{model}</translation>
    </message>
    <message>
        <source>Model {model} is now active</source>
        <translation>已启用模型 {model}</translation>
    </message>
    <message>
        <source>cache</source>
        <translation>缓存</translation>
    </message>
    <message>
        <source>{ms} ms</source>
        <translation>{ms} 毫秒</translation>
    </message>
    <message>
        <source>Prediction by {model} ({origin})</source>
        <translation>由 {model} 预测（{origin}）</translation>
    </message>
    <message>
        <source>Click prediction failed</source>
        <translation>点击预测失败</translation>
    </message>
    <message>
        <source>Device: {device}</source>
        <translation>设备：{device}</translation>
    </message>
    <message>
        <source>{tool} ({key}): left click = tumour, right or Shift+click = not tumour; the model redraws the mask after each click</source>
        <translation>{tool} ({key})：左键 = 肿瘤，右键或 Shift+单击 = 非肿瘤；每次点击后模型会重新绘制掩膜</translation>
    </message>
    <message>
        <source>Click to correct ({key}) is not available: model {model} was not trained with clicks. Activate a model that was (Model ▸ Model versions).</source>
        <translation>点击修正 ({key}) 不可用：模型 {model} 训练时未使用点击。请启用支持点击的模型（模型 ▸ 模型版本）。</translation>
    </message>
    <message>
        <source>Click to correct: not available with this model</source>
        <translation>点击修正：此模型不支持</translation>
    </message>
    <message>
        <source>Click {n}: mask redrawn by {model} ({ms} ms)</source>
        <translation>第 {n} 次点击：{model} 已重新绘制掩膜（{ms} 毫秒）</translation>
    </message>
    <message>
        <source>Pre-annotation cancelled: {n} cases</source>
        <translation>预标注已取消：{n} 个病例</translation>
    </message>
    <message>
        <source>Pre-annotation finished: {n} cases</source>
        <translation>预标注完成：{n} 个病例</translation>
    </message>
    <message>
        <source>No prediction for this case yet</source>
        <translation>该病例尚无预测结果</translation>
    </message>
    <message>
        <source>Use model prediction</source>
        <translation>采用模型预测</translation>
    </message>
</context>
<context>
    <name>Review</name>
    <message>
        <source>manual</source>
        <translation>手动</translation>
    </message>
    <message>
        <source>autosave</source>
        <translation>自动保存</translation>
    </message>
    <message>
        <source>accept</source>
        <translation>确认</translation>
    </message>
    <message>
        <source>clicks</source>
        <translation>点击修正</translation>
    </message>
    <message>
        <source>case switch</source>
        <translation>切换病例</translation>
    </message>
    <message>
        <source>workspace switch</source>
        <translation>切换工作区</translation>
    </message>
    <message>
        <source>before import</source>
        <translation>导入前</translation>
    </message>
    <message>
        <source>before export</source>
        <translation>导出前</translation>
    </message>
    <message>
        <source>before training</source>
        <translation>训练前</translation>
    </message>
    <message>
        <source>before exclude</source>
        <translation>排除前</translation>
    </message>
    <message>
        <source>close</source>
        <translation>关闭窗口</translation>
    </message>
    <message>
        <source>Could not write the recovery journal ({error}): these edits are only in memory until they are saved.</source>
        <translation>无法写入恢复日志（{error}）：这些编辑在保存之前只存在于内存中。</translation>
    </message>
    <message>
        <source>Your edits are kept in the recovery journal and offered again at the next start.</source>
        <translation>您的编辑已保存在恢复日志中，下次启动时会再次提供恢复。</translation>
    </message>
    <message>
        <source>Your edits are only in memory: keep ADF Viewer open, free disk space or make the workspace writable, then press Ctrl+S.</source>
        <translation>您的编辑只存在于内存中：请保持 ADF Viewer 打开，释放磁盘空间或使工作区可写，然后按 Ctrl+S。</translation>
    </message>
    <message>
        <source>Could not save {case}: {error}. {where}</source>
        <translation>无法保存 {case}：{error}。{where}</translation>
    </message>
    <message>
        <source>Saved {case} as revision {rev} ({reason})</source>
        <translation>已将 {case} 保存为修订版本 {rev}（{reason}）</translation>
    </message>
    <message>
        <source>The last click on {case} is still being predicted: accept once the mask has been redrawn.</source>
        <translation>{case} 的最后一次点击仍在预测中：请在掩膜重绘后再确认。</translation>
    </message>
    <message>
        <source>the model&apos;s prediction has not arrived yet</source>
        <translation>模型的预测结果尚未返回</translation>
    </message>
    <message>
        <source>Nothing to accept for {case}: {why}. Outline the tumour, wait for the prediction, or use Case ▸ Approve as tumour-free.</source>
        <translation>{case} 没有可确认的内容：{why}。请勾画肿瘤、等待预测结果，或使用 病例 ▸ 确认为无肿瘤。</translation>
    </message>
    <message>
        <source>Could not approve {case}: {error}</source>
        <translation>无法确认 {case}：{error}</translation>
    </message>
    <message>
        <source>Approve as tumour-free</source>
        <translation>确认为无肿瘤</translation>
    </message>
    <message>
        <source>{case} approved as tumour-free (revision {rev})</source>
        <translation>{case} 已确认为无肿瘤（修订版本 {rev}）</translation>
    </message>
    <message>
        <source>Restore revision {rev}</source>
        <translation>恢复修订版本 {rev}</translation>
    </message>
    <message>
        <source>Recovery failed</source>
        <translation>恢复失败</translation>
    </message>
</context>
<context>
    <name>SaveConflict</name>
    <message>
        <source>Not saved: {headline} Your edits stay here and in the recovery journal until you save (Ctrl+S) or switch cases, when you will be asked again.</source>
        <translation>未保存：{headline} 您的编辑会保留在此处和恢复日志中；当您保存 (Ctrl+S) 或切换病例时会再次询问。</translation>
    </message>
    <message>
        <source>Keep revision {rev} by {author}</source>
        <translation>保留 {author} 的修订版本 {rev}</translation>
    </message>
    <message>
        <source>Showing revision {rev} by {author}; Ctrl+Z brings your edits back</source>
        <translation>正在显示 {author} 的修订版本 {rev}；按 Ctrl+Z 可找回您的编辑</translation>
    </message>
</context>
<context>
    <name>SaveConflictDialog</name>
    <message>
        <source>Newer revision saved by someone else</source>
        <translation>其他人保存了更新的修订版本</translation>
    </message>
    <message>
        <source>revision {rev}</source>
        <translation>修订版本 {rev}</translation>
    </message>
    <message>
        <source>a case with no saved revision</source>
        <translation>尚无已保存修订的病例</translation>
    </message>
    <message>
        <source>A newer revision was saved by {author} at {time} (revision {rev} of {case}).</source>
        <translation>{author} 于 {time} 保存了更新的修订版本（{case} 的修订版本 {rev}）。</translation>
    </message>
    <message>
        <source>Your edits started from {start}.</source>
        <translation>您的编辑基于{start}。</translation>
    </message>
    <message>
        <source>Their mask: {theirs} px; yours: {mine} px; agreement (Dice) {dice}.</source>
        <translation>对方的掩膜：{theirs} 像素；您的：{mine} 像素；一致性 (Dice) {dice}。</translation>
    </message>
    <message>
        <source>Saving yours keeps theirs in the history; keeping theirs keeps yours one Ctrl+Z away.</source>
        <translation>保存您的版本时，对方的版本仍保留在修订历史中；保留对方的版本时，按一次 Ctrl+Z 即可找回您的编辑。</translation>
    </message>
    <message>
        <source>Keep theirs</source>
        <translation>保留对方的版本</translation>
    </message>
    <message>
        <source>Save mine as newer revision</source>
        <translation>将我的保存为更新的修订</translation>
    </message>
    <message>
        <source>Decide later</source>
        <translation>稍后决定</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>语言</translation>
    </message>
    <message>
        <source>The new language is used after ADF Viewer is restarted.</source>
        <translation>重新启动 ADF Viewer 后使用新的语言。</translation>
    </message>
</context>
<context>
    <name>ShortcutsDialog</name>
    <message>
        <source>Keyboard shortcuts</source>
        <translation>键盘快捷键</translation>
    </message>
    <message>
        <source>Keys</source>
        <translation>按键</translation>
    </message>
    <message>
        <source>Action</source>
        <translation>操作</translation>
    </message>
</context>
<context>
    <name>Status</name>
    <message>
        <source>new</source>
        <translation>未处理</translation>
    </message>
    <message>
        <source>predicted</source>
        <translation>已预测</translation>
    </message>
    <message>
        <source>in progress</source>
        <translation>修订中</translation>
    </message>
    <message>
        <source>corrected</source>
        <translation>已修订</translation>
    </message>
    <message>
        <source>approved</source>
        <translation>已批准</translation>
    </message>
    <message>
        <source>excluded</source>
        <translation>已排除</translation>
    </message>
</context>
<context>
    <name>StatusWidgets</name>
    <message>
        <source>Device: loading…</source>
        <translation>设备：加载中…</translation>
    </message>
    <message>
        <source>Model: —</source>
        <translation>模型：—</translation>
    </message>
    <message>
        <source>Click tool off: model not trained with clicks</source>
        <translation>点击工具不可用：模型训练时未使用点击</translation>
    </message>
</context>
<context>
    <name>Tools</name>
    <message>
        <source>Smooth</source>
        <translation>平滑</translation>
    </message>
    <message>
        <source>Grow</source>
        <translation>扩张</translation>
    </message>
    <message>
        <source>Shrink</source>
        <translation>收缩</translation>
    </message>
    <message>
        <source>Fill holes</source>
        <translation>填充孔洞</translation>
    </message>
    <message>
        <source>Remove islands</source>
        <translation>去除孤岛</translation>
    </message>
    <message>
        <source>Refine</source>
        <translation>精修</translation>
    </message>
    <message>
        <source>Click {sign}</source>
        <translation>点击 {sign}</translation>
    </message>
    <message>
        <source>Brush stroke</source>
        <translation>画笔笔画</translation>
    </message>
    <message>
        <source>Erase stroke</source>
        <translation>擦除笔画</translation>
    </message>
    <message>
        <source>Push/pull</source>
        <translation>推拉</translation>
    </message>
</context>
<context>
    <name>ToolsPanel</name>
    <message>
        <source>Tools</source>
        <translation>工具</translation>
    </message>
    <message>
        <source> px</source>
        <translation> 像素</translation>
    </message>
    <message>
        <source>Brush radius in image pixels ([ and ], or Ctrl+wheel)</source>
        <translation>画笔半径，单位为图像像素（[ 和 ]，或 Ctrl+滚轮）</translation>
    </message>
    <message>
        <source>Brush radius</source>
        <translation>画笔半径</translation>
    </message>
    <message>
        <source>Use model prediction</source>
        <translation>采用模型预测</translation>
    </message>
    <message>
        <source>Replace the current mask by the model&apos;s prediction (undoable)</source>
        <translation>用模型预测替换当前掩膜（可撤销）</translation>
    </message>
    <message>
        <source>Overlay</source>
        <translation>叠加层</translation>
    </message>
    <message>
        <source>Show (O)</source>
        <translation>显示 (O)</translation>
    </message>
    <message>
        <source>Outline</source>
        <translation>轮廓</translation>
    </message>
    <message>
        <source>Filled</source>
        <translation>填充</translation>
    </message>
    <message>
        <source>Probability heat map</source>
        <translation>概率热图</translation>
    </message>
    <message>
        <source>Mode (M)</source>
        <translation>样式 (M)</translation>
    </message>
    <message>
        <source>Opacity</source>
        <translation>不透明度</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Device: not loaded yet</source>
        <translation>设备：尚未加载</translation>
    </message>
    <message>
        <source>Predict again</source>
        <translation>重新预测</translation>
    </message>
    <message>
        <source>Pre-annotate all</source>
        <translation>全部预标注</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Review</source>
        <translation>审核</translation>
    </message>
    <message>
        <source>Accept  (A)</source>
        <translation>确认 (A)</translation>
    </message>
    <message>
        <source>Tumour-free</source>
        <translation>无肿瘤</translation>
    </message>
    <message>
        <source>Approve as tumour-free: no tumour in this case (Ctrl+Shift+A)</source>
        <translation>确认为无肿瘤：该病例没有肿瘤 (Ctrl+Shift+A)</translation>
    </message>
    <message>
        <source>Exclude… (X)</source>
        <translation>排除… (X)</translation>
    </message>
</context>
<context>
    <name>TrainDialog</name>
    <message>
        <source>Held-out Dice {own}.</source>
        <translation>留出集 Dice {own}。</translation>
    </message>
    <message>
        <source>Held-out Dice {own}, better than the base model&apos;s {base} on the same cases.</source>
        <translation>留出集 Dice {own}，在相同病例上优于基础模型的 {base}。</translation>
    </message>
    <message>
        <source>Held-out Dice {own}, not better than the base model&apos;s {base} on the same cases: compare them, and roll back in Model ▸ Model versions if needed.</source>
        <translation>留出集 Dice {own}，在相同病例上未优于基础模型的 {base}：请比较两者，必要时在 模型 ▸ 模型版本 中回退。</translation>
    </message>
    <message>
        <source>The two versions outline the {n} held-out tumour cases with the same Dice.</source>
        <translation>两个版本在 {n} 个留出的肿瘤病例上的勾画 Dice 相同。</translation>
    </message>
    <message>
        <source>Difference {gain} (95 % interval {lo} to {hi}) over {n} held-out tumour cases: too few to tell the two apart.</source>
        <translation>在 {n} 个留出的肿瘤病例上，差值为 {gain}（95% 区间 {lo} 至 {hi}）：病例太少，无法区分两个版本的优劣。</translation>
    </message>
    <message>
        <source>Difference {gain} (95 % interval {lo} to {hi}) over {n} held-out tumour cases.</source>
        <translation>在 {n} 个留出的肿瘤病例上，差值为 {gain}（95% 区间 {lo} 至 {hi}）。</translation>
    </message>
    <message>
        <source>Train a new model version</source>
        <translation>训练新的模型版本</translation>
    </message>
    <message>
        <source>Fine-tunes a model on this workspace&apos;s reviewed cases (a held-out part is used for validation). Runs on this computer; nothing is uploaded.</source>
        <translation>在本工作区已审核的病例上微调模型（留出一部分病例用于验证）。在本机运行，不上传任何数据。</translation>
    </message>
    <message>
        <source>(no model in this workspace: train from scratch)</source>
        <translation>（此工作区没有模型：从头训练）</translation>
    </message>
    <message>
        <source>  (active)</source>
        <translation>（当前）</translation>
    </message>
    <message>
        <source>Base model</source>
        <translation>基础模型</translation>
    </message>
    <message>
        <source>Epochs</source>
        <translation>训练轮数</translation>
    </message>
    <message>
        <source>Train on cases</source>
        <translation>训练使用的病例</translation>
    </message>
    <message>
        <source>Start training</source>
        <translation>开始训练</translation>
    </message>
    <message>
        <source>Cancel run</source>
        <translation>取消训练</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Activate anyway</source>
        <translation>仍然启用</translation>
    </message>
    <message>
        <source>Use the new version although it did not beat its base model on the held-out cases</source>
        <translation>即使新版本在留出病例上未超过基础模型，也启用它</translation>
    </message>
    <message>
        <source>Starting training…</source>
        <translation>正在开始训练…</translation>
    </message>
    <message>
        <source>Training on {n} cases, validating on {val} ({device}).</source>
        <translation>在 {n} 个病例上训练，在 {val} 个病例上验证（{device}）。</translation>
    </message>
    <message>
        <source>epoch {epoch}/{epochs}: loss {loss}</source>
        <translation>第 {epoch}/{epochs} 轮：损失 {loss}</translation>
    </message>
    <message>
        <source>, val Dice {dice}</source>
        <translation>，验证 Dice {dice}</translation>
    </message>
    <message>
        <source>Base model on the {n} held-out cases: Dice {dice}.</source>
        <translation>基础模型在 {n} 个留出病例上：Dice {dice}。</translation>
    </message>
    <message>
        <source>The held-out cases scored every share alike, so its weights lie {share} of the way from the base model&apos;s to the fine-tuned ones, the default, which forgets less of what the base model knew.</source>
        <translation>留出病例对各比例的得分相同，因此其权重位于基础模型权重到微调权重之间 {share} 处（默认值），可减少对基础模型已学知识的遗忘。</translation>
    </message>
    <message>
        <source>The fine-tuned weights scored best on the held-out cases and are used as they are.</source>
        <translation>微调后的权重在留出病例上得分最高，按原样使用。</translation>
    </message>
    <message>
        <source>Its weights lie {share} of the way from the base model&apos;s to the fine-tuned ones: that share scored best on the held-out cases, and forgets less of what the base model knew.</source>
        <translation>其权重位于基础模型权重到微调权重之间 {share} 处：该比例在留出病例上得分最高，并可减少对基础模型已学知识的遗忘。</translation>
    </message>
    <message>
        <source>Its weights lie {share} of the way from the base model&apos;s to the fine-tuned ones, which forgets less of what the base model knew.</source>
        <translation>其权重位于基础模型权重到微调权重之间 {share} 处，可减少对基础模型已学知识的遗忘。</translation>
    </message>
    <message>
        <source>New model {model} registered and activated.</source>
        <translation>新模型 {model} 已注册并启用。</translation>
    </message>
    <message>
        <source>No tumour case was held out, so the two versions&apos; tumour outlines were not compared.</source>
        <translation>没有留出含肿瘤的病例，因此未比较两个版本的肿瘤勾画。</translation>
    </message>
    <message>
        <source>New model {model} registered but NOT activated: it did not beat the base model on the held-out cases, so the base model stays in use. Use &quot;Activate anyway&quot; to switch to it.</source>
        <translation>新模型 {model} 已注册但未启用：它在留出病例上未超过基础模型，因此继续使用基础模型。如需切换，请点击“仍然启用”。</translation>
    </message>
    <message>
        <source>Error: {message}</source>
        <translation>错误：{message}</translation>
    </message>
    <message>
        <source>Training ended without a model (exit code {code}).</source>
        <translation>训练结束，但未生成模型（退出码 {code}）。</translation>
    </message>
    <message>
        <source>Model {model} activated at your request.</source>
        <translation>已按您的要求启用模型 {model}。</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
</context>
<context>
    <name>VideoImportDialog</name>
    <message>
        <source>Videos (*.mp4 *.m4v *.avi *.mov *.mkv *.mpg *.mpeg *.webm *.wmv);;All files (*)</source>
        <translation>视频 (*.mp4 *.m4v *.avi *.mov *.mkv *.mpg *.mpeg *.webm *.wmv);;所有文件 (*)</translation>
    </message>
    <message>
        <source>Cancelled: the video being analysed was not imported.</source>
        <translation>已取消：正在分析的视频未被导入。</translation>
    </message>
    <message>
        <source>Imported {n} case(s) ({pairs} WLI/NBI pair(s), {wli_only} WLI-only); the workspace now holds {total}.</source>
        <translation>已导入 {n} 个病例（{pairs} 个白光/NBI 图像对，{wli_only} 个仅白光）；工作区现有 {total} 个病例。</translation>
    </message>
    <message>
        <source>Frames: {frames} — WLI {wli}, NBI {nbi}, unusable {unusable}.</source>
        <translation>帧数：{frames}——白光 {wli}，NBI {nbi}，不可用 {unusable}。</translation>
    </message>
    <message>
        <source>{name}: not imported — {reason}</source>
        <translation>{name}：未导入——{reason}</translation>
    </message>
    <message>
        <source>; {n} NBI segment(s) without a registrable WLI partner</source>
        <translation>；{n} 个 NBI 片段没有可配准的白光帧</translation>
    </message>
    <message>
        <source>{name}: {pairs} pair(s) from {segments} NBI segment(s), patient {patient}</source>
        <translation>{name}：从 {segments} 个 NBI 片段得到 {pairs} 个图像对，患者 {patient}</translation>
    </message>
    <message>
        <source>Skipped {n} case(s):</source>
        <translation>跳过了 {n} 个病例：</translation>
    </message>
    <message>
        <source>Import endoscopy videos</source>
        <translation>导入内镜视频</translation>
    </message>
    <message>
        <source>Every frame is classified as white light, NBI or unusable from its content; the sharpest NBI frames are paired with the nearest sharp white-light frame of the same scene and kept only when their registration holds. Patient id: the sub-folder of the chosen folder, else the file name.</source>
        <translation>每一帧都会根据内容分为白光、NBI 或不可用；最清晰的 NBI 帧与同一场景中最近的清晰白光帧配对，只有配准成功时才保留。患者编号：所选文件夹的子文件夹名，否则为文件名。</translation>
    </message>
    <message>
        <source>Also import white-light-only cases from scenes never seen in NBI</source>
        <translation>同时导入从未在 NBI 下出现的场景中的仅白光病例</translation>
    </message>
    <message>
        <source>Keep burned-in text (patient name, date); by default it is blacked out</source>
        <translation>保留画面中嵌入的文字（患者姓名、日期）；默认会将其涂黑</translation>
    </message>
    <message>
        <source>Choose videos…</source>
        <translation>选择视频…</translation>
    </message>
    <message>
        <source>Choose a folder (one sub-folder per patient)…</source>
        <translation>选择文件夹（每位患者一个子文件夹）…</translation>
    </message>
    <message>
        <source>Cancel import</source>
        <translation>取消导入</translation>
    </message>
    <message>
        <source>Endoscopy videos</source>
        <translation>内镜视频</translation>
    </message>
    <message>
        <source>Folder of recordings (one sub-folder per patient)</source>
        <translation>录像文件夹（每位患者一个子文件夹）</translation>
    </message>
    <message>
        <source>Importing…</source>
        <translation>正在导入…</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <source>Import failed: {error}</source>
        <translation>导入失败：{error}</translation>
    </message>
</context>
<context>
    <name>Worklist</name>
    <message>
        <source>Case</source>
        <translation>病例</translation>
    </message>
    <message>
        <source>Patient</source>
        <translation>患者</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Dice</source>
        <translation>Dice</translation>
    </message>
    <message>
        <source>Edited</source>
        <translation>修改时间</translation>
    </message>
    <message>
        <source>Video</source>
        <translation>视频</translation>
    </message>
    <message>
        <source>Case id (full id in each row&apos;s tooltip)</source>
        <translation>病例编号（完整编号见每行的提示）</translation>
    </message>
    <message>
        <source>Patient id</source>
        <translation>患者编号</translation>
    </message>
    <message>
        <source>Review status</source>
        <translation>审核状态</translation>
    </message>
    <message>
        <source>Dice between the model&apos;s prediction and the clinician&apos;s latest revision</source>
        <translation>模型预测与医生最新修订之间的 Dice</translation>
    </message>
    <message>
        <source>When the case last changed (local time)</source>
        <translation>病例最后修改的时间（本地时间）</translation>
    </message>
    <message>
        <source>Time of the WLI frame in the recording the case was imported from (video imports)</source>
        <translation>该病例白光帧在原始录像中的时间（视频导入）</translation>
    </message>
    <message>
        <source>, NBI frame {frame} at {time}</source>
        <translation>，NBI 第 {frame} 帧，位于 {time}</translation>
    </message>
    <message>
        <source>{video}: WLI frame {frame} at {time}</source>
        <translation>{video}：白光第 {frame} 帧，位于 {time}</translation>
    </message>
    <message>
        <source>Excluded: {reason}</source>
        <translation>已排除：{reason}</translation>
    </message>
    <message>
        <source>no reason given</source>
        <translation>未说明原因</translation>
    </message>
</context>
<context>
    <name>WorklistPanel</name>
    <message>
        <source>Search case or patient…</source>
        <translation>搜索病例或患者…</translation>
    </message>
    <message>
        <source>All statuses</source>
        <translation>全部状态</translation>
    </message>
    <message>
        <source>To review</source>
        <translation>待审核</translation>
    </message>
    <message>
        <source>{n} cases</source>
        <translation>{n} 个病例</translation>
    </message>
    <message>
        <source>{n} {status}</source>
        <translation>{status} {n}</translation>
    </message>
</context>
</TS>
