"""nodeflow's built-in node library, one subpackage per family:

    image/  LoadImage, Save, Sobel, HighPass, Grid, PlotLoss,
            MatchColors                                          (base install)
    nst/    VGGFeatures, StyleLoss, ContentLoss, TVLoss,
            AdamOptimize, LBFGSOptimize                          ([nst])
    hub/    HubStylize, StyleVector, MultiStyle                  ([hub], [tfhub])
    sd/     SDImg2Img                                            ([sd])
    comfy_core/  ComfyUI's own LoadImage (ComfyLoadImage), SaveImage, PreviewImage,
            SaveImageWebsocket, ImageScale, ImageScaleBy, ImageInvert,
            ImageBlend                                           (base install)
    _shared/  helpers several families use (pixels, downloads, torch devices, ports)

Each public module holds one node; modules starting with _ are private helpers, imported
only by the nodes that need them.
"""
